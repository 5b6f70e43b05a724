// Drives the real Home Assistant frontend of the demo (scripts/develop) in headless Chromium, the
// way a new user would, and saves a screenshot after each step.
//   node e2e/run.mjs --shots <dir> --chromium /usr/bin/chromium
// Exits 1 when a step fails or the browser logged an error that is not known, unrelated noise.
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";

import { HA_URL, parseArgs } from "./demo.mjs";
import { ConsoleWatch } from "./console_watch.mjs";
import { STEPS } from "./steps.mjs";

// playwright-core lives in the cache (scripts/e2e sets NODE_PATH); CommonJS require searches it.
const { chromium } = createRequire(import.meta.url)("playwright-core");

const args = parseArgs(process.argv.slice(2));
// scripts/e2e passes its start time, so both print one time line.
const started = Number(process.env.E2E_T0) || Date.now();
const say = (text) =>
  console.error(`e2e [${String(Math.round((Date.now() - started) / 1000)).padStart(3)}s] ${text}`);

mkdirSync(args.shots, { recursive: true });
const profile = mkdtempSync(join(tmpdir(), "iot_sms_e2e_chromium."));
const context = await chromium.launchPersistentContext(profile, {
  executablePath: args.chromium,
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
  baseURL: HA_URL,
  viewport: { width: 1280, height: 900 },
  locale: "en-US",
  timezoneId: "UTC",
});
let failed = false;
try {
  // Only the demo is reachable; anything else (brand images, docs links) fails at once instead of
  // waiting for a DNS time-out.
  await context.route(
    (url) => url.origin !== HA_URL,
    (route) => route.abort("blockedbyclient"),
  );
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(20_000);
  const watch = new ConsoleWatch(page);
  let index = 0;
  const shot = async (name) => {
    index += 1;
    const path = join(args.shots, `${String(index).padStart(2, "0")}-${name}.png`);
    // Finished animations: a panel caught half-way open would not show what the step checked.
    await page.screenshot({ path, animations: "disabled" });
    say(`  screenshot ${path}`);
  };
  for (const [name, step] of STEPS) {
    watch.step = name;
    say(`step: ${name}`);
    try {
      await step({ page, shot, say });
    } catch (err) {
      failed = true;
      say(`FAILED: ${name}: ${err.message.split("\n").slice(0, 8).join("\n    ")}`);
      await page
        .screenshot({ path: join(args.shots, "failure.png"), animations: "disabled" })
        .then(() => say(`  screenshot ${join(args.shots, "failure.png")}`))
        .catch(() => {});
      break;
    }
  }
  for (const { why, count } of watch.ignored()) say(`ignored ${count} browser error(s): ${why}`);
  const errors = watch.errors();
  if (errors.length > 0) {
    failed = true;
    say(`FAILED: the browser logged ${errors.length} error(s):`);
    for (const error of errors) say(`  [${error.step}] ${error.text}`);
  }
} finally {
  await context.close();
  rmSync(profile, { recursive: true, force: true });
}
say(failed ? "browser checks failed" : "browser checks passed");
process.exit(failed ? 1 : 0);
