import { z } from "zod";
import { AppLoadError } from "./errors.js";

/**
 * App settings: `start_server --conf KEY VALUE` gives strings (MONAI_LABEL_APP_CONF); each app parses them
 * with its own zod schema, which extends `appConf` (MONAI's keys shared by the sample apps). Unknown keys are
 * kept, as MONAI apps ignore what they do not read; a value the schema rejects stops the app at start.
 */

const TRUE = ["true", "1", "yes", "on", "t", "y"];
const FALSE = ["false", "0", "no", "off", "f", "n"];

/** A boolean setting (MONAI's strtobool). */
export const confFlag = (def: boolean) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") {
        return def;
      }
      const s = v.trim().toLowerCase();
      if (TRUE.includes(s)) {
        return true;
      }
      if (FALSE.includes(s)) {
        return false;
      }
      ctx.addIssue({ code: "custom", message: "expected true or false" });
      return z.NEVER;
    });

/** A whole number setting, at least `min`. */
export const confInt = (def: number, min = 1) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") {
        return def;
      }
      const n = Number(v);
      if (!Number.isInteger(n) || n < min) {
        ctx.addIssue({ code: "custom", message: `expected an integer >= ${min}` });
        return z.NEVER;
      }
      return n;
    });

/** A number setting in [min, max]. */
export const confNumber = (def: number, min = Number.NEGATIVE_INFINITY, max = Number.POSITIVE_INFINITY) =>
  z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v.trim() === "") {
        return def;
      }
      const n = Number(v);
      if (!Number.isFinite(n) || n < min || n > max) {
        ctx.addIssue({ code: "custom", message: `expected a number in [${min}, ${max}]` });
        return z.NEVER;
      }
      return n;
    });

/** A comma-separated list ("a,b,c"). */
export const confList = (def: string[]) =>
  z
    .string()
    .optional()
    .transform((v) =>
      v === undefined || v.trim() === ""
        ? def
        : v
            .split(",")
            .map((s) => s.trim())
            .filter(Boolean),
    );

/** MONAI's conf keys shared by the sample apps. */
export const appConf = z.looseObject({
  /** Which models to serve: a comma list of names, or `all` (MONAI requires it; here it defaults to `all`). */
  models: z
    .string()
    .optional()
    .transform((v): string[] | "all" => {
      const names = (v ?? "all")
        .split(",")
        .map((s) => s.trim())
        .filter(Boolean);
      return names.length === 0 || names.includes("all") ? "all" : names;
    }),
  /** Load the models' ONNX sessions at start rather than on the first request. */
  preload: confFlag(false),
  skip_trainers: confFlag(false),
  skip_strategies: confFlag(false),
  skip_scoring: confFlag(false),
  /** Use the weights shipped with the app (false: a model is served once trained here). */
  use_pretrained_model: confFlag(true),
});

export type AppConf = z.output<typeof appConf>;

/** A `--conf` the app rejects: every problem together, named by key. */
export class AppConfError extends AppLoadError {
  override name = "AppConfError";
  constructor(
    readonly app: string,
    readonly problems: string[],
  ) {
    super(`invalid --conf for app ${app}:\n${problems.map((p) => `  - ${p}`).join("\n")}`);
  }
}

export function parseConf<T>(app: string, schema: z.ZodType<T>, raw: Record<string, string>): T {
  const parsed = schema.safeParse(raw);
  if (parsed.success) {
    return parsed.data;
  }
  throw new AppConfError(
    app,
    parsed.error.issues.map((issue) => {
      const key = issue.path.join(".");
      return key ? `${key} ${JSON.stringify(raw[key] ?? null)}: ${issue.message}` : issue.message;
    }),
  );
}
