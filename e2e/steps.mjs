// The user journey, one function per step. Each clicks what a user clicks and waits for what the
// user would see (Playwright's locators pierce the frontend's open shadow roots).
//
// Where a role is not enough, a locator names a frontend element: its text sits in a slot of a
// custom element whose role lives inside the shadow root, so the text is not a descendant of the
// role element (ha-dialog items, ha-md-list-item rows, entity rows).
import { readFileSync } from "node:fs";

import { ESEYE, HUB_TITLE, LOGIN, SUPERSIM, TRACKER } from "./demo.mjs";

const MESSAGE = "STATUS?";
// The Tracker SIM of the simulator answers every SMS with "ECHO: <text>" (simulator/emnify.py,
// simulator/supersim.py).
const ECHO = `ECHO: ${MESSAGE}`;
// Delivery report (3 s simulated delay) and echo reply, both pushed by the simulator.
const DELIVERY_TIMEOUT = 30_000;

// What the frontend shows for the integration's own strings (its translation file).
const translations = JSON.parse(
  readFileSync(new URL("../custom_components/iot_sms/translations/en.json", import.meta.url)),
);
const STATUS_DELIVERED = translations.entity.sensor.last_sms_status.state.delivered;
const INVALID_AUTH = translations.config.error.invalid_auth;
const SEND_SMS = translations.device_automation.action_type.send_sms;
// The frontend's own strings after "Run action" (ui.panel.config.automation.editor.actions):
// a toast when it ran, an alert dialog with the error's message when it failed.
const ACTION_RAN = "Action ran successfully";
const ACTION_ERROR = "Error running action";

// Super SIM sends one SMS of at most 160 single-byte characters and never splits: a longer text
// is refused with the integration's translated error, before anything is sent.
const LONG_MESSAGE = `CONFIG ${"interval=60 report=gps ".repeat(7)}`.trim();
if (LONG_MESSAGE.length <= SUPERSIM.maxChars) throw new Error("LONG_MESSAGE is not too long");
const TOO_LONG_ERROR = exceptionMessage("message_too_long_single", {
  title: SUPERSIM.title,
  max_chars: String(SUPERSIM.maxChars),
});

/**
 * An exception's message as Home Assistant words it (helpers/translation.py,
 * async_get_exception_message): the translation without its final ".", placeholders filled.
 */
function exceptionMessage(key, placeholders) {
  const text = translations.exceptions[key].message.replace(/\.+$/, "");
  return text.replace(/\{(\w+)\}/g, (whole, name) => {
    if (!(name in placeholders)) throw new Error(`no value for ${whole} in "${text}"`);
    return placeholders[name];
  });
}

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

/**
 * Settings → Devices & services → IoT SIM SMS → the devices of the entry `entryTitle` → Tracker
 * (the emnify and the Super SIM entries both have a "Tracker": their device lists tell them
 * apart).
 */
async function goToTracker(page, entryTitle = HUB_TITLE) {
  await openSettings(page, "Devices & services");
  await page.getByRole("link", { name: "IoT SIM SMS" }).click();
  await page
    .locator("ha-md-list-item", { hasText: entryTitle })
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
  // The only "Tracker" so far: the Super SIM entry, with its own, is added later.
  await actions.getByRole("combobox", { name: "Device" }).fill(TRACKER);
  await page.getByRole("option", { name: startsWith(TRACKER) }).first().click();
  await chooseSendSms(page, actions);
  await messageField(actions).fill(MESSAGE);
  await shot("automation-editor-send-sms");

  await openActionMenu(actions);
  await shot("automation-editor-action-menu");
  await runAction(page);
  await page.getByRole("status").filter({ hasText: ACTION_RAN }).waitFor();
  await shot("automation-editor-action-ran");
}

/** In the editor's "Then do" region (`actions`), the device's action "Send SMS". */
async function chooseSendSms(page, actions) {
  await actions.getByRole("combobox", { name: "Action" }).click();
  await page.getByRole("option", { name: SEND_SMS, exact: true }).click();
  // The action row's header names the chosen device action.
  await actions.getByRole("heading", { name: SEND_SMS }).waitFor();
}

/** The device action's "Message" field (required: its label ends in "*"). */
function messageField(actions) {
  const label = translations.device_automation.extra_fields.message;
  return actions.getByRole("textbox", { name: startsWith(label) });
}

async function openActionMenu(actions) {
  await actions.getByRole("button", { name: "Menu", exact: true }).click();
}

/** The action row's menu (open) → "Run action": runs the action as it stands, unsaved. */
async function runAction(page) {
  await page.getByRole("menuitem", { name: "Run action" }).click();
}

/** Leave the unsaved automation: the editor asks "Save new automation?"; it is not wanted. */
async function leaveEditorUnsaved(page) {
  await page.getByRole("option", { name: /^Settings/ }).first().click();
  await page.getByRole("button", { name: "Don't save" }).click();
}

async function seeDeliveryAndReply({ page, shot }) {
  // The action ran; the automation is not wanted.
  await leaveEditorUnsaved(page);
  await goToTracker(page);
  await expectDeliveredAndEcho(page);
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

/** Settings → Devices & services → Add integration → IoT SIM SMS: the provider menu. */
async function openProviderMenu(page) {
  await openSettings(page, "Devices & services");
  await page.getByRole("button", { name: "Add integration" }).click();
  // Typing before the dialog has rendered its list of brands makes the frontend (2025.4) throw
  // "Cannot read properties of undefined (reading 'domain')" in the list's virtualizer.
  await page.locator("ha-dialog ha-integration-list-item").first().waitFor();
  await page.getByRole("textbox", { name: "Search for a brand name" }).fill("IoT SIM SMS");
  await page.locator("ha-dialog").getByText("IoT SIM SMS", { exact: true }).click();
  await page.getByRole("heading", { name: translations.config.step.user.title }).waitFor();
}

/** A menu option of the open config or options flow dialog, by its label. */
async function chooseMenuOption(page, label) {
  await page.locator("ha-dialog").getByText(label, { exact: true }).click();
}

/** On a Tracker's device page: the SMS sent is "Delivered", and its echo is the last reply. */
async function expectDeliveredAndEcho(page) {
  await entityRow(page, "Last SMS status")
    .filter({ hasText: STATUS_DELIVERED })
    .waitFor({ timeout: DELIVERY_TIMEOUT });
  await entityRow(page, "Last incoming SMS")
    .filter({ hasText: ECHO })
    .waitFor({ timeout: DELIVERY_TIMEOUT });
}

async function addEseyeEntry({ page, shot }) {
  await openProviderMenu(page);
  await shot("eseye-provider-menu");
  await chooseMenuOption(page, translations.config.step.user.menu_options.eseye);

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
  await expectEntryLoaded(page, "Eseye");
  await shot("integration-with-eseye-entry");
}

/**
 * After "Finish": the integration's page lists the new entry (the row with `text`) as loaded, and
 * returns that row.
 */
async function expectEntryLoaded(page, text) {
  // Finish opens the integration's page, where the new entry is listed. Adding an entry waits for
  // its set-up, so its state is settled: loaded shows no state text, just its entities.
  await page.waitForURL(/\/config\/integrations\/integration\/iot_sms/);
  const entry = page.locator("ha-md-list-item", { hasText: text });
  await entry.getByRole("link", { name: /^\d+ entit(y|ies)$/ }).waitFor();
  const state = entry.getByText(
    /Failed to set up|Failed setup, will retry|Migration error|Not loaded|Initializing/,
  );
  if ((await state.count()) > 0) {
    throw new Error(`the entry "${text}" did not load: ${await state.first().innerText()}`);
  }
  return entry;
}

async function addSuperSimEntry({ page, shot }) {
  await openProviderMenu(page);
  await chooseMenuOption(page, translations.config.step.user.menu_options.supersim_twilio);

  const form = translations.config.step.supersim_twilio;
  await page.getByRole("heading", { name: form.title }).waitFor();
  const accountSid = page.getByRole("textbox", { name: startsWith(form.data.account_sid) });
  const authToken = page.getByRole("textbox", { name: startsWith(form.data.auth_token) });
  const baseUrlName = startsWith(form.sections.advanced.data.base_url);
  await accountSid.fill(SUPERSIM.accountSid);
  await authToken.fill(SUPERSIM.authToken);
  await expandAdvanced(page, form.sections.advanced.name, baseUrlName);
  await page.getByRole("textbox", { name: baseUrlName }).fill(SUPERSIM.url);
  await shot("supersim-form");
  await page.getByRole("button", { name: "Submit" }).click();

  await page.getByRole("heading", { name: "Success" }).waitFor();
  await page.getByText(`Created configuration for ${SUPERSIM.title}`).waitFor();
  await shot("supersim-entry-created");
  await page.getByRole("button", { name: "Finish" }).click();
  // The SIMs of the account are its devices.
  const entry = await expectEntryLoaded(page, SUPERSIM.title);
  await entry.getByRole("link", { name: `${SUPERSIM.sims} devices` }).waitFor();
  await shot("integration-with-supersim-entry");
}

/** The entry's options: "Point the provider at Home Assistant" → its Fleet, so replies come. */
async function pointFleetAtHomeAssistant({ page, shot }) {
  const options = translations.options.step;
  const entry = page.locator("ha-md-list-item", { hasText: SUPERSIM.title });
  await entry.getByRole("button", { name: "Configure" }).click();
  await page.getByRole("heading", { name: options.init.title }).waitFor();
  await chooseMenuOption(page, options.init.menu_options.callbacks);
  await page.getByRole("heading", { name: options.callbacks.title }).waitFor();
  await page.getByRole("checkbox", { name: SUPERSIM.fleet }).check();
  await shot("supersim-options-fleet");
  await page.getByRole("button", { name: "Submit" }).click();
  await page.getByText("Options successfully saved.").waitFor();
  await shot("supersim-options-saved");
  await page.getByRole("button", { name: "Finish" }).click();
}

/** Open the form's collapsed "Advanced" section (again after a re-shown form), wait for `field`. */
async function expandAdvanced(page, name, field) {
  const section = page.getByRole("button", { name, exact: true });
  if ((await section.getAttribute("aria-expanded")) !== "true") await section.click();
  await page.getByRole("textbox", { name: field }).waitFor();
}

/**
 * The Super SIM Tracker's device page → Automations "+" → "Use device as action": the editor
 * opens with this very device. (Its device picker would offer two "Tracker"s, the emnify one
 * too, told apart by nothing it shows: name and area only.)
 */
async function editSuperSimTrackerAction({ page, shot }) {
  await goToTracker(page, SUPERSIM.title);
  // Nothing sent to this SIM yet: a "Delivered" later can only come from this run's SMS.
  await entityRow(page, "Last SMS status").filter({ hasText: "Unknown" }).waitFor();
  await page.getByRole("button", { name: "Create automation with device" }).click();
  await page.getByRole("option", { name: /^Use device as action/ }).click();
  await page.waitForURL(/\/config\/automation\/edit\/new/);

  // Which device the action is for shows in its outcome: the error names the Super SIM entry,
  // and "Delivered" and the echo appear on this device page. (The action's YAML view would show
  // its device_id, but the action menu of 2025.4 sometimes no longer opens once the row has been
  // switched to YAML, so "Edit in visual editor" cannot be reached again.)
  const actions = page.getByRole("region", { name: "Then do" });
  await chooseSendSms(page, actions);
  await messageField(actions).waitFor();
  await shot("supersim-editor-device-action");
}

/** The device action, a text over 160 characters: the integration's error, nothing sent. */
async function refuseTooLongText({ page, shot }) {
  const actions = page.getByRole("region", { name: "Then do" });
  await messageField(actions).fill(LONG_MESSAGE);
  await openActionMenu(actions);
  await runAction(page);
  const dialog = page.getByRole("alertdialog", { name: ACTION_ERROR });
  await dialog.waitFor();
  // The text is slotted into ha-dialog, outside the alertdialog element's subtree.
  const shown = (await page.locator("dialog-box #dialog-box-description").innerText()).trim();
  if (shown !== TOO_LONG_ERROR) {
    throw new Error(
      `"${ACTION_ERROR}" says ${JSON.stringify(shown)}, not ${JSON.stringify(TOO_LONG_ERROR)}`,
    );
  }
  await shot("supersim-editor-too-long-error");
  await page.locator("dialog-box").getByRole("button", { name: "OK" }).click();
  await dialog.waitFor({ state: "hidden" });
}

/** The same action with a text that fits: it runs. */
async function sendToSuperSimTracker({ page, shot }) {
  const actions = page.getByRole("region", { name: "Then do" });
  await messageField(actions).fill(MESSAGE);
  await shot("supersim-editor-send-sms");
  await openActionMenu(actions);
  await runAction(page);
  await page.getByRole("status").filter({ hasText: ACTION_RAN }).waitFor();
  await shot("supersim-editor-action-ran");
}

async function seeSuperSimDeliveryAndReply({ page, shot }) {
  await leaveEditorUnsaved(page);
  await goToTracker(page, SUPERSIM.title);
  // The reply comes through the Fleet's SMS Commands URL, set in the options step.
  await expectDeliveredAndEcho(page);
  await shot("supersim-tracker-delivered-and-reply");
}

export const STEPS = [
  ["log in as dev/dev", logIn],
  [`open the ${TRACKER} device page`, openTracker],
  [`send "${MESSAGE}" with the device action "Send SMS" (automation editor)`, sendFromEditor],
  [`see "${STATUS_DELIVERED}" and the reply "${ECHO}" on the ${TRACKER}`, seeDeliveryAndReply],
  ["add an Eseye entry from the UI (wrong password first)", addEseyeEntry],
  ["add a Super SIM (Twilio) entry from the UI", addSuperSimEntry],
  [`point the Super SIM Fleet "${SUPERSIM.fleet}" at Home Assistant`, pointFleetAtHomeAssistant],
  [
    `"${SEND_SMS}" for the Super SIM ${TRACKER} (device page → automation editor)`,
    editSuperSimTrackerAction,
  ],
  [`run it with ${LONG_MESSAGE.length} characters: the integration's error`, refuseTooLongText],
  [`run it with "${MESSAGE}"`, sendToSuperSimTracker],
  [
    `see "${STATUS_DELIVERED}" and the reply "${ECHO}" on the Super SIM ${TRACKER}`,
    seeSuperSimDeliveryAndReply,
  ],
];
