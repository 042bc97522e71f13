import { LabelApp } from "../../src/app/label-app.js";

/**
 * The radiology template app: brain segmentation on T1 MRI (Colin27 demo data). Its inference,
 * training, strategies and scoring methods arrive with the task issues; today it serves the datastore.
 */
export default class RadiologyApp extends LabelApp {
  override name = "radiology";
  override description = "Brain segmentation on T1 MRI";
  override version = "0.1.0";
  override labels = ["brain"];
}
