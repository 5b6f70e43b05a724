// What scripts/develop sets up (scripts/bootstrap_config.py, simulator/): the facts every e2e
// script relies on, in one place.
export const HA_URL = "http://127.0.0.1:8123";
export const LOGIN = { username: "dev", password: "dev" };
export const HUB_TITLE = "Demo Fleet";
export const TRACKER = "Tracker"; // the echo SIM: replies "ECHO: <text>"
export const ESEYE = {
  url: "http://127.0.0.1:8301",
  username: "demo",
  password: "demo-password",
};

/** Parse `--name value` pairs into an object. */
export function parseArgs(argv) {
  const args = {};
  for (let i = 0; i < argv.length; i += 2) {
    if (!argv[i].startsWith("--") || argv[i + 1] === undefined) {
      throw new Error(`bad arguments: ${argv.join(" ")}`);
    }
    args[argv[i].slice(2)] = argv[i + 1];
  }
  return args;
}
