// Every word the canvasser app shows, in one catalogue ready for translation.
// `t(key, values)` fills {name} placeholders.

export const STRINGS = {
  appName: "Canvass",
  loading: "Loading…",
  // join and sign-in
  joinTitle: "Join your campaign",
  joinIntro: "Your organiser gave you a join code or link. Create an account, or sign in if you have one.",
  joinCode: "Join code",
  newAccount: "I'm new: create my account",
  haveAccount: "I already have an account",
  yourName: "Your name",
  email: "Email",
  password: "Password (8 characters or more)",
  createAccount: "Create account and start",
  signIn: "Sign in",
  signInTitle: "Sign in",
  signInAgainIntro: "Sign in again so this phone can send its records. Nothing recorded is lost.",
  chooseCampaign: "Campaign",
  registering: "Setting up this phone…",
  downloading: "Downloading your lists…",
  joinFailed: "Could not join: {detail}",
  signInFailed: "Could not sign in: {detail}",
  noCampaign: "Your account is not in a campaign yet. Ask your organiser for a join code.",
  installApp: "Add to home screen",
  installHint: "Tip: add Canvass to your home screen to open it like an app, even offline.",
  // status
  waiting: "{count} waiting to send",
  allSent: "All records sent",
  lastSynced: "Last synced {time}",
  neverSynced: "Not synced yet",
  syncNow: "Sync now",
  syncing: "Syncing…",
  offline: "Offline: records are kept on this phone",
  upgradeRequired: "This app needs updating. Your records are kept on the phone.",
  reloadApp: "Reload the app",
  authNeeded: "Sign in again to send your records. They are kept on this phone.",
  signInAgain: "Sign in again",
  problems: "{count} records were not accepted",
  showProblems: "See why",
  retryIn: "Could not reach the server; trying again in {seconds} s",
  // lists
  myLists: "My lists",
  noLists: "No walk lists are assigned to you yet. Pull to refresh with Sync now, or ask your organiser.",
  doorsProgress: "{done} of {total} doors done",
  openList: "Open {name}",
  listTitle: "{name}",
  back: "Back",
  backToLists: "Back to my lists",
  map: "Map of the route",
  doorsInOrder: "Doors in route order",
  nextDoor: "Next door",
  building: "Building: {name}",
  door: "Door {n} of {total}",
  done: "done",
  allDone: "All doors done. Well done!",
  // door
  notIn: "Not in",
  outcomeQuestion: "What happened?",
  outcomes: {
    spoke: "Spoke",
    not_home: "Not in",
    refused: "Refused",
    moved: "Moved",
    deceased: "Deceased",
    inaccessible: "Can't reach door",
    come_back: "Come back later",
    do_not_visit: "Do not visit",
    wrong_address: "Wrong address",
  },
  recorded: "Recorded: {what}",
  queued: "waiting to send",
  sent: "sent",
  undoLast: "Undo last",
  undone: "Last record undone",
  nothingToUndo: "Nothing of yours to undo at this door.",
  doNotVisitWarning: "Do not knock: this household asked not to be visited.",
  movedAwayWarning: "Someone here has moved away.",
  people: "People at this address",
  wholeHousehold: "Whole household",
  nobodyRegistered: "Nobody registered here.",
  survey: "Survey: {name}",
  noSurvey: "No survey for this campaign.",
  saveAnswer: "Save answer",
  script: "Read at the door",
  required: "required",
  requiredLeft: "Still to ask ({count} required): {names}",
  answerNeeded: "This question is required: give an answer.",
  chooseAny: "Choose all that apply",
  yes: "Yes",
  no: "No",
  note: "Note about this household",
  saveNote: "Save note",
  saved: "Saved",
  contact: "Contact details",
  consent: "Agrees to be contacted",
  phone: "Phone",
  emailAddress: "Email",
  saveContact: "Save contact details",
  consentFirst: "Record consent first to take a phone number or email.",
  markDoNotVisit: "Asked not to be visited",
  markMovedAway: "Moved away",
  observed: "Noted: {what}",
  // problems
  problemsTitle: "Records not accepted",
  noProblems: "Every record was accepted.",
  reasons: {
    out_of_scope: "This door is not on your lists any more. The record was kept for your organiser to check.",
    erased: "This person's details were removed at their request, so the record was not kept.",
    unknown: "The server does not know this door or person. Tell your organiser.",
    not_allowed: "That can't be recorded from a phone. Ask your organiser.",
    invalid: "The record was not valid for this survey. Tell your organiser.",
    unsupported: "The server is older than this app. The record is kept and will count after the server is updated.",
    duplicate_seq: "This record was sent twice; the first copy counts.",
    conflicting_duplicate: "This record clashed with an earlier one; your organiser will check it.",
    clock_skew: "Your phone's clock is wrong. Set the date and time, then record again.",
    other: "Not accepted: {reason}",
  },
};

/** The string for `key` (dotted for nested), with {placeholders} filled from `values`. */
export function t(key, values = {}) {
  let text = key.split(".").reduce((node, part) => (node == null ? node : node[part]), STRINGS);
  if (typeof text !== "string") text = key;
  return text.replace(/\{(\w+)\}/g, (_, name) => (name in values ? String(values[name]) : `{${name}}`));
}

/** A rejection reason in plain words (the server's machine-readable prefix picks the sentence). */
export function plainReason(reason) {
  const prefix = String(reason || "").split(/[:\s]/)[0].trim(); // "unsupported: …", or an older server's "unknown address 5"
  if (prefix in STRINGS.reasons && prefix !== "other") return STRINGS.reasons[prefix];
  return t("reasons.other", { reason });
}
