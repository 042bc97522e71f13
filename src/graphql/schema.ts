import { builder } from "./builder.js";
import "./scalars.js";
import "./errors.js";
import "./info.js";
import "./image.js";
import "./label.js";
import "./job.js";
import "./model.js";
import "./session.js";
import "./train.js";
import "./datastore-events.js";
import "./strategy.js";
import "./scoring.js";
import "./wsi.js";

// toSchema() sorts types and fields, so the printed schema is stable.
export const schema = builder.toSchema();
