// The user journey, one function per step. Each clicks what a user clicks and waits for what the
// user would see (Playwright's locators pierce the frontend's open shadow roots).
//
// Where a role is not enough, a locator names a frontend element: its text sits in a slot of a
// custom element whose role lives inside the shadow root, so the text is not a descendant of the
// role element (ha-dialog items, ha-md-list-item rows, entity rows).
import { readFileSync } from "node:fs";

import { ESEYE, HUB_TITLE, LOGIN, TRACKER } from "./demo.mjs";

const MESSAGE = "STATUS?";
// The Tracker SIM of the simulator answers every SMS with "ECHO: <text>" (simulator/emnify.py).
const ECHO = `ECHO: ${MESSAGE}`;
// Delivery report (3 s simulated delay) and echo reply, both pushed by the simulator.
const DELIVERY_TIMEOUT = 30_000;

// What the frontend shows for the integration's own strings (its translation file).
const translations = JSON.parse(
  readFileSync(new URL("../custom_components/iot_sms/translations/en.json", import.meta.url)),
);
const STATUS_DELIVERED = translations.entity.sensor.last_sms_status.state.delivered;
const INVALID_AUTH = translations.config.error.invalid_auth;

/** A label as the start of an accessible name (required fields end in "*"). */
const startsWith = (label) => new RegExp(`^${label.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}`);

async function logIn({ page, shot }) {
  await page.goto("/");
  await page.getByRole("heading", { name: "Welcome home!" }).waitFor();
  await page.getByRole("textbox", { name: "Username" }).fill(LOGIN.username);
  await page.getByRole("textbox", { name: "Password" }).fill(LOGIN.password);
  await shot("login");
  await page.getByRole("button", { name: "Log in" }).click();
  await page.waitForURL((url) => !url.pathname.startsWith("/auth/"));
  // The default dashboard lists the demo's devices once the frontend is connected.
  await page.getByRole("heading", { name: TRACKER }).waitFor();
  await shot("overview");
}

async function openSettings(page, item) {
  await page.getByRole("option", { name: /^Settings/ }).first().click();
  await page.getByRole("menuitem", { name: startsWith(item) }).click();
}

/** Settings → Devices & services → IoT SIM SMS → the hub's devices → Tracker. */
async function goToTracker(page) {
  await openSettings(page, "Devices & services");
  await page.getByRole("link", { name: "IoT SIM SMS" }).click();
  await page
    .locator("ha-md-list-item", { hasText: HUB_TITLE })
    .getByRole("link", { name: /^\d+ devices?$/ })
    .click();
  await page.getByRole("row").filter({ hasText: TRACKER }).click();
  await page.waitForURL(/\/config\/devices\/device\//);
  await page.getByText("Device info").waitFor();
}

/** An entity row of the device page ("Sensors", "Events" cards) by the entity's name. */
function entityRow(page, name) {
  // The name is rendered in the row's shadow root, the state is slotted (light DOM): `has` for
  // the name (exact: "Incoming SMS" must not match "Last incoming SMS"), `hasText` for the state.
  return page
    .locator("hui-generic-entity-row")
    .filter({ has: page.getByText(name, { exact: true }) });
}

async function openTracker({ page, shot }) {
  await goToTracker(page);
  // A fresh demo: nothing sent yet, so a "Delivered" later can only come from this run's SMS.
  await entityRow(page, "Last SMS status").filter({ hasText: "Unknown" }).waitFor();
  await shot("tracker-device");
}

async function sendFromEditor({ page, shot }) {
  await openSettings(page, "Automations & scenes");
  await page.getByRole("button", { name: "Create automation" }).click();
  await page.getByRole("option", { name: /^Create new automation/ }).click();
  await page.waitForURL(/\/config\/automation\/edit\/new/);

  const actions = page.getByRole("region", { name: "Then do" });
  await actions.getByRole("button", { name: "Add action" }).click();
  await page.locator("ha-dialog").getByText("Device", { exact: true }).click();
  await actions.getByRole("combobox", { name: "Device" }).fill(TRACKER);
  await page.getByRole("option", { name: startsWith(TRACKER) }).first().click();
  await actions.getByRole("combobox", { name: "Action" }).click();
  await page.getByRole("option", { name: "Send SMS", exact: true }).click();
  // The action row's header names the chosen device action.
  await actions.getByRole("heading", { name: "Send SMS" }).waitFor();
  await actions.getByRole("textbox", { name: /^Message/ }).fill(MESSAGE);
  await shot("automation-editor-send-sms");

  await actions.getByRole("button", { name: "Menu", exact: true }).click();
  await shot("automation-editor-action-menu");
  await page.getByRole("menuitem", { name: "Run action" }).click();
  await page.getByRole("status").filter({ hasText: "Action ran successfully" }).waitFor();
  await shot("automation-editor-action-ran");
}

async function seeDeliveryAndReply({ page, shot }) {
  // Leaving the unsaved automation, the editor asks "Save new automation?": the action ran, the
  // automation is not wanted.
  await page.getByRole("option", { name: /^Settings/ }).first().click();
  await page.getByRole("button", { name: "Don't save" }).click();
  await goToTracker(page);

  await entityRow(page, "Last SMS status")
    .filter({ hasText: STATUS_DELIVERED })
    .waitFor({ timeout: DELIVERY_TIMEOUT });
  await entityRow(page, "Last incoming SMS")
    .filter({ hasText: ECHO })
    .waitFor({ timeout: DELIVERY_TIMEOUT });
  await shot("tracker-delivered-and-reply");

  // The reply in the entity's more-info dialog, as a user opening it sees it.
  await entityRow(page, "Last incoming SMS").getByText("Last incoming SMS").click();
  await page.getByRole("alertdialog", { name: "Last incoming SMS" }).waitFor();
  // The dialog's content is slotted into ha-dialog, outside the alertdialog element's subtree.
  await page.locator("ha-more-info-dialog").getByText(ECHO, { exact: true }).first().waitFor();
  await shot("last-incoming-sms-more-info");
  await page.keyboard.press("Escape");
  await page.getByRole("alertdialog", { name: "Last incoming SMS" }).waitFor({ state: "hidden" });

  // The event entity's row: it shows the last event's type once a reply came in.
  const eventTypes = translations.entity.event.incoming_sms.state_attributes.event_type.state;
  await entityRow(page, "Incoming SMS").filter({ hasText: eventTypes.message_received }).waitFor();
}

async function addEseyeEntry({ page, shot }) {
  await openSettings(page, "Devices & services");
  await page.getByRole("button", { name: "Add integration" }).click();
  await page.getByRole("textbox", { name: "Search for a brand name" }).fill("IoT SIM SMS");
  await page.locator("ha-dialog").getByText("IoT SIM SMS", { exact: true }).click();
  await page.getByRole("heading", { name: translations.config.step.user.title }).waitFor();
  await shot("eseye-provider-menu");
  await page
    .locator("ha-dialog")
    .getByText(translations.config.step.user.menu_options.eseye, { exact: true })
    .click();

  const form = translations.config.step.eseye;
  await page.getByRole("heading", { name: form.title }).waitFor();
  const username = page.getByRole("textbox", { name: startsWith(form.data.username) });
  const password = page.getByRole("textbox", { name: startsWith(form.data.password) });
  const baseUrlName = startsWith(form.sections.advanced.data.base_url);
  await username.fill(ESEYE.username);
  await password.fill("not-the-password");
  await expandAdvanced(page, form.sections.advanced.name, baseUrlName);
  await page.getByRole("textbox", { name: baseUrlName }).fill(ESEYE.url);
  await shot("eseye-form-wrong-password");
  await page.getByRole("button", { name: "Submit" }).click();

  await page.getByText(INVALID_AUTH).waitFor();
  await expandAdvanced(page, form.sections.advanced.name, baseUrlName);
  await shot("eseye-invalid-auth");
  // What the user typed must survive the error: only the password is typed again.
  const kept = {
    username: await username.inputValue(),
    base_url: await page.getByRole("textbox", { name: baseUrlName }).inputValue(),
  };
  if (kept.username !== ESEYE.username || kept.base_url !== ESEYE.url) {
    throw new Error(
      `after "${INVALID_AUTH}" the form lost the input: username ${JSON.stringify(kept.username)}` +
        ` (typed ${JSON.stringify(ESEYE.username)}), base URL ${JSON.stringify(kept.base_url)}` +
        ` (typed ${JSON.stringify(ESEYE.url)})`,
    );
  }

  await password.fill(ESEYE.password);
  await page.getByRole("button", { name: "Submit" }).click();
  await page.getByRole("heading", { name: "Success" }).waitFor();
  await page.getByText(/Created configuration for /).waitFor();
  await shot("eseye-entry-created");
  await page.getByRole("button", { name: "Finish" }).click();

  // Finish opens the integration's page, where the new entry is listed. Adding an entry waits for
  // its set-up, so its state is settled: loaded shows no state text, just its entities.
  await page.waitForURL(/\/config\/integrations\/integration\/iot_sms/);
  const entry = page.locator("ha-md-list-item", { hasText: "Eseye" });
  await entry.getByRole("link", { name: /^\d+ entit(y|ies)$/ }).waitFor();
  const state = entry.getByText(
    /Failed to set up|Failed setup, will retry|Migration error|Not loaded|Initializing/,
  );
  if ((await state.count()) > 0) {
    throw new Error(`the Eseye entry did not load: ${await state.first().innerText()}`);
  }
  await shot("integration-with-eseye-entry");
}

/** Open the form's collapsed "Advanced" section (again after a re-shown form), wait for `field`. */
async function expandAdvanced(page, name, field) {
  const section = page.getByRole("button", { name, exact: true });
  if ((await section.getAttribute("aria-expanded")) !== "true") await section.click();
  await page.getByRole("textbox", { name: field }).waitFor();
}

export const STEPS = [
  ["log in as dev/dev", logIn],
  [`open the ${TRACKER} device page`, openTracker],
  [`send "${MESSAGE}" with the device action "Send SMS" (automation editor)`, sendFromEditor],
  [`see "${STATUS_DELIVERED}" and the reply "${ECHO}" on the ${TRACKER}`, seeDeliveryAndReply],
  ["add an Eseye entry from the UI (wrong password first)", addEseyeEntry],
];
