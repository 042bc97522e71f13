/** The app could not be loaded or started: the CLI prints the message and exits with status 2. */
export class AppLoadError extends Error {
  override name = "AppLoadError";
}
