import { execFile } from "node:child_process";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import type { RestDeps } from "../deps.js";
import { HttpError, sendText } from "../http.js";
import { HANDLED, type Route } from "../router.js";

const run = promisify(execFile);

const page = (refresh: number) => `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Logs</title>
<style>body{margin:0;background:#111;color:#ddd}pre{margin:0;padding:8px;font:12px monospace;white-space:pre-wrap}</style>
</head><body><pre id="log"></pre><script>
const url = new URL(location.href); url.searchParams.set("text", "true");
async function load() {
  const r = await fetch(url); document.getElementById("log").textContent = await r.text();
  window.scrollTo(0, document.body.scrollHeight);
}
load(); setInterval(load, ${refresh * 1000});
</script></body></html>`;

/** MONAI's /logs/: the tail of <app>/logs/app.log, as text or as a page that refreshes it. */
export function logsRoutes(deps: RestDeps): Route[] {
  return [
    {
      method: "GET",
      path: "/logs/",
      tag: "Logs",
      summary: "Get Logs",
      query: [
        { name: "lines", type: "integer", default: 300 },
        { name: "html", type: "boolean", default: true },
        { name: "text", type: "boolean", default: false },
        { name: "refresh", type: "integer", default: 0 },
      ],
      handler: async (ctx) => {
        const file = deps.config.appDir ? join(deps.config.appDir, "logs", "app.log") : null;
        const text = file ? await readFile(file, "utf8").catch(() => null) : null;
        if (text === null) {
          throw new HttpError(404, "Log File NOT Found");
        }
        if (ctx.query.html === true && ctx.query.text !== true) {
          sendText(ctx.res, 200, page(Math.max(3, Number(ctx.query.refresh))), "text/html; charset=utf-8");
          return HANDLED;
        }
        const n = Number(ctx.query.lines);
        const lines = text.split("\n");
        if (lines.at(-1) === "") {
          lines.pop();
        }
        const tail = n > 0 ? lines.slice(-n) : lines;
        sendText(ctx.res, 200, tail.length ? `${tail.join("\n")}\n` : "");
        return HANDLED;
      },
    },
    {
      method: "GET",
      path: "/logs/gpu",
      tag: "Logs",
      summary: "Get GPU Info (nvidia-smi)",
      handler: async (ctx) => {
        try {
          const { stdout } = await run("nvidia-smi", [], { timeout: 10_000 });
          sendText(ctx.res, 200, stdout);
        } catch {
          throw new HttpError(404, "nvidia-smi is not available on this server");
        }
        return HANDLED;
      },
    },
  ];
}
