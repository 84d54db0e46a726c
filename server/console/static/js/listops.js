// Walk-list edits the console makes through the existing API: split, merge, delete, re-knock, assign
// (to a person or a team). Each answers the changed lists; phones get the change on their next sync.

import { postJSON, del } from "./api.js";

const base = (campaignId) => `/api/campaigns/${campaignId}/walklists`;

export const splitList = (campaignId, listId, parts = 2) => postJSON(`${base(campaignId)}/${listId}/split`, { parts });
export const mergeLists = (campaignId, ids) => postJSON(`${base(campaignId)}/merge`, { walk_list_ids: ids });
export const reknockLists = (campaignId, ids) => postJSON(`${base(campaignId)}/reknock`, { walk_list_ids: ids });
export const deleteList = (campaignId, listId) => del(`${base(campaignId)}/${listId}`);

/** Assign to "user:ID", "team:ID", or nobody (""). */
export async function assignList(campaignId, listId, holder) {
  const url = `${base(campaignId)}/${listId}`;
  if (!holder) { await del(`${url}/assign`); return null; }
  const [kind, id] = holder.split(":");
  if (kind === "team") return postJSON(`${url}/assign-team`, { team_id: Number(id) });
  return postJSON(`${url}/assign`, { user_id: Number(id) });
}

/** The current holder of a list as an assign-select value. */
export function holderValue(list) {
  if (list.team) return `team:${list.team.team_id}`;
  return list.assignee ? `user:${list.assignee.user_id}` : "";
}

/** Option groups for "assign to": canvassers, other members, teams. */
export function holderOptions(el, members, teams) {
  const canvassers = (members || []).filter((m) => m.role === "canvasser");
  const others = (members || []).filter((m) => m.role !== "canvasser");
  return [
    el("option", { value: "" }, "— nobody —"),
    canvassers.length ? el("optgroup", { label: "Canvassers" }, canvassers.map((m) => el("option", { value: `user:${m.user_id}` }, m.display_name))) : null,
    others.length ? el("optgroup", { label: "Others" }, others.map((m) => el("option", { value: `user:${m.user_id}` }, `${m.display_name} (${m.role})`))) : null,
    (teams || []).length ? el("optgroup", { label: "Teams" }, teams.map((t) => el("option", { value: `team:${t.id}` }, `Team ${t.name} (${t.members.length})`))) : null,
  ];
}
