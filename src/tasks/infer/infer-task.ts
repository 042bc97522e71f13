/**
 * MONAI Label's InferTask (interfaces/tasks/infer_v2.py): what a model is (type, labels, dimension,
 * description, config) and how to run it on one image.
 */
export const InferType = {
  SEGMENTATION: "segmentation",
  ANNOTATION: "annotation",
  CLASSIFICATION: "classification",
  DEEPGROW: "deepgrow",
  DEEPEDIT: "deepedit",
  SCRIBBLES: "scribbles",
  DETECTION: "detection",
  OTHERS: "others",
} as const;
export type InferType = (typeof InferType)[keyof typeof InferType];

/** A string, a list, or MONAI's {name: index} dict. */
export type Labels = string | string[] | Record<string, number>;

export interface InferTaskInfo {
  type: InferType;
  labels: Labels;
  dimension: number;
  description: string;
  config: Record<string, unknown>;
}

/** What the pipeline needs from the server for one request. */
export interface InferRequest {
  /** A local file holding the image. */
  imagePath: string;
  /** MONAI's request params: device, result_extension, foreground/background clicks, roi_size ... */
  params: Record<string, unknown>;
  signal?: AbortSignal;
}

export interface InferResult {
  /** The label file the writer produced (a temporary file the caller removes), or null (JSON-only tasks). */
  labelPath: string | null;
  /** label_names, latencies, centroids and whatever the post-transforms put under `result`. */
  json: Record<string, unknown>;
}

export abstract class InferTask {
  readonly type: InferType;
  readonly labels: Labels;
  readonly dimension: number;
  readonly description: string;
  readonly config: Record<string, unknown>;

  constructor(opts: {
    type: InferType;
    labels: Labels;
    dimension: number;
    description: string;
    config?: Record<string, unknown>;
  }) {
    this.type = opts.type;
    this.labels = opts.labels;
    this.dimension = opts.dimension;
    this.description = opts.description;
    this.config = { device: ["cpu"], ...(opts.config ?? {}) };
  }

  info(): InferTaskInfo {
    return {
      type: this.type,
      labels: this.labels,
      dimension: this.dimension,
      description: this.description,
      config: this.config,
    };
  }

  /** Whether the task can run (a model file exists); MONAI lists only valid models. */
  abstract isValid(): boolean;

  abstract run(request: InferRequest, services: InferServices): Promise<InferResult>;
}

/** The server-side resources a task uses; given by the inference service, never global. */
export interface InferServices {
  pool: import("../../runtime/session-pool.js").SessionPool;
}

/** Label names in index order, whatever form `labels` takes. */
export function labelNames(labels: Labels): string[] {
  if (typeof labels === "string") {
    return [labels];
  }
  if (Array.isArray(labels)) {
    return labels;
  }
  return Object.entries(labels)
    .sort((a, b) => a[1] - b[1])
    .map(([name]) => name);
}
