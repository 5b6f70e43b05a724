// Collects what the browser reports as errors: console.error calls, failed loads and uncaught
// exceptions (pageerror). Every one fails the run except the noise listed in IGNORED.
import { HA_URL } from "./demo.mjs";

// Each entry: why it is unrelated to the integration, and how it is recognised.
const IGNORED = [
  {
    // run.mjs blocks every address but the demo's (there is no internet here): brand images from
    // brands.home-assistant.io (Home Assistant 2025.4 serves no local brand images) fail to load.
    why: "loads from outside the demo (brand images), blocked: no internet here",
    test: (m) => m.text.startsWith("Failed to load resource") && !m.url.startsWith(`${HA_URL}/`),
  },
];

export class ConsoleWatch {
  constructor(page) {
    this.step = "start";
    this.seen = [];
    page.on("console", (message) => {
      if (message.type() !== "error") return;
      this.seen.push({ step: this.step, text: message.text(), url: message.location().url ?? "" });
    });
    page.on("pageerror", (error) => {
      this.seen.push({ step: this.step, text: `uncaught: ${error.stack ?? error.message}`, url: "" });
    });
  }

  /** The errors that fail the run. */
  errors() {
    return this.seen
      .filter((m) => !IGNORED.some((rule) => rule.test(m)))
      .map((m) => ({ ...m, text: m.url ? `${m.text} (${m.url})` : m.text }));
  }

  /** How many errors each IGNORED rule let pass, by its reason. */
  ignored() {
    return IGNORED.map((rule) => ({
      why: rule.why,
      count: this.seen.filter((m) => rule.test(m)).length,
    })).filter((entry) => entry.count > 0);
  }
}
