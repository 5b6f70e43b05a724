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
// The Super SIM (Twilio) simulator: one Fleet with the three SIMs of the emnify one, so a second
// device named "Tracker" (echo) once its entry is added.
const SUPERSIM_SID = "ACdededededededededededededededede";
export const SUPERSIM = {
  url: "http://127.0.0.1:8303",
  accountSid: SUPERSIM_SID,
  authToken: "demo-auth-token-0000000000000000",
  fleet: "Demo fleet",
  sims: 3, // Pump station, Remote gateway, Tracker: its devices
  // The integration names a Super SIM entry after its Account SID (api/supersim.py), and sends
  // one SMS of at most this many characters, unsplit.
  title: `Super SIM (${SUPERSIM_SID})`,
  maxChars: 160,
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
