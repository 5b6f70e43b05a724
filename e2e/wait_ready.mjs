// Wait until the demo's Home Assistant answers and the "Demo Fleet" entry is loaded, so the
// browser never races Home Assistant's start-up.
//   node e2e/wait_ready.mjs --pid <scripts/develop pid> --timeout <seconds>
import { HA_URL, HUB_TITLE, LOGIN, parseArgs } from "./demo.mjs";

const args = parseArgs(process.argv.slice(2));
const pid = Number(args.pid);
const deadline = Date.now() + Number(args.timeout ?? 120) * 1000;
const clientId = `${HA_URL}/`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function demoAlive() {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

function check() {
  if (!demoAlive()) throw new Error("scripts/develop exited before Home Assistant was ready");
  if (Date.now() > deadline) throw new Error(`not ready after ${args.timeout} s`);
}

async function post(path, body, form = false) {
  const response = await fetch(`${HA_URL}${path}`, {
    method: "POST",
    headers: { "Content-Type": form ? "application/x-www-form-urlencoded" : "application/json" },
    body: form ? new URLSearchParams(body).toString() : JSON.stringify(body),
  });
  if (!response.ok) throw new Error(`POST ${path}: HTTP ${response.status}`);
  return response.json();
}

// The same login flow the frontend's login page uses.
async function accessToken() {
  const flow = await post("/auth/login_flow", {
    client_id: clientId,
    handler: ["homeassistant", null],
    redirect_uri: `${HA_URL}/?auth_callback=1`,
  });
  const step = await post(`/auth/login_flow/${flow.flow_id}`, { ...LOGIN, client_id: clientId });
  if (step.type !== "create_entry") throw new Error(`login failed: ${JSON.stringify(step)}`);
  const token = await post(
    "/auth/token",
    { grant_type: "authorization_code", code: step.result, client_id: clientId },
    true,
  );
  return token.access_token;
}

async function main() {
  for (;;) {
    check();
    try {
      const response = await fetch(`${HA_URL}/manifest.json`);
      if (response.ok) break;
    } catch {
      // Not listening yet.
    }
    await sleep(500);
  }
  const token = await accessToken();
  let last = "no iot_sms entry";
  for (;;) {
    try {
      check();
    } catch (err) {
      throw new Error(`${err.message}; "${HUB_TITLE}": ${last}`);
    }
    const response = await fetch(`${HA_URL}/api/config/config_entries/entry?domain=iot_sms`, {
      headers: { Authorization: `Bearer ${token}` },
    });
    if (response.ok) {
      const entry = (await response.json()).find((e) => e.title === HUB_TITLE);
      if (entry?.state === "loaded") return;
      if (entry) last = `${entry.state}${entry.reason ? ` (${entry.reason})` : ""}`;
    } else {
      last = `HTTP ${response.status}`;
    }
    await sleep(500);
  }
}

main().catch((err) => {
  console.error(`e2e: Home Assistant not ready: ${err.message}`);
  process.exit(1);
});
