import { lexicographicSortSchema } from "graphql";
import { builder } from "./builder.js";
import "./scalars.js";
import "./errors.js";
import "./info.js";
import "./image.js";
import "./label.js";
import "./job.js";
import "./datastore-events.js";

export const schema = lexicographicSortSchema(builder.toSchema());
