// What a person reads when the server says no: plain words for each refusal. The server's own
// wording and its codes are for logs and tests; a person never sees either.

const SAID = {
  already_connected: "This link is already in use in another window.",
  chat_disabled: "Group chat is off for this session. You can still write privately to the clinician.",
  chat_rate_limited: "You are sending messages quickly; please wait a moment and try again.",
  declined: "The clinician has not admitted you to this session.",
  missing_profile: "Please choose how the group will see you.",
  no_host_present: "The clinician is not in the room right now.",
  nobody_waiting: "Nobody is waiting.",
  not_admitted: "You can do this once you are in the room.",
  not_waiting: "That person is no longer in the waiting room.",
  host_only: "Only the clinician can do that.",
  not_present: "You are not in this session just now.",
  raise_hand_to_speak: "The clinician lets people unmute in turn: raise your hand and they will let you speak.",
  room_locked: "The clinician has locked the session for now.",
  session_ended: "This session has ended.",
  text_only_not_allowed: "This group does not offer taking part by text only.",
  video_held_by_host: "The clinician has turned your camera off for now.",
  checklist_incomplete: "Please confirm every item of the group agreement.",
  invalid_checklist: "Please confirm every item of the group agreement.",
  profile_below_enforced: "The clinician has asked for more privacy than that choice gives.",
  profile_below_minimum: "This group asks for more privacy than that choice gives.",
  late_join_closed: "Today's group has started, so the waiting room has closed and you cannot join this session. Thank you for coming. Your clinician has been told you tried to join.",
  lobby_not_open: "The waiting room is not open yet. Please come back nearer the start time.",
  room_full: "The session is full.",
  removed: "The clinician has ended your place in this session.",
  profile_not_allowed: "That choice is not available in this group.",
  rate_limited: "That was a lot at once; please wait a moment and try again.",
  timeout: "The server did not answer in time. Please try again.",
  disconnected: "You are not connected just now. Please wait while we reconnect.",
};

// when the server pauses or resumes others' video because this member's connection is weak
export const LINK_WEAK = {
  paused: "Your connection is weak just now: other people's video is paused so you can keep hearing the group.",
  resumed: "Your connection has recovered: other people's video is back.",
};

export const GENERIC = "That did not work. Please try again.";

// the sentence for a refusal `code`, or a plain fallback (never the code itself)
export function say(code, fallback = GENERIC) {
  return (code && SAID[code]) || fallback;
}
