// Payload shapes (PROTOCOL.md §2, §3, §5, §9), checked before anything is looked up: a
// malformed payload is VALIDATION_ERROR even for a chat that does not exist. Each function
// takes untrusted JSON and returns a clean object or throws VALIDATION_ERROR.

import { validation } from './errors.js';

export const MAX_BODY_CHARS = 8000;
export const MAX_ID_CHARS = 128;
export const MAX_TITLE_CHARS = 200;
export const MAX_MEMBER_IDS = 1000;
export const MAX_PAGE = 200;
export const DEFAULT_PAGE = 50;

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const BLANK_RE = /^\p{White_Space}*$/u;

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && !Buffer.isBuffer(v);

/** Length in Unicode scalar values, counting no further than `max + 1`. */
function charCount(s, max) {
  if (s.length <= max) return s.length; // every scalar takes at least one UTF-16 unit
  let n = 0;
  for (let i = 0; i < s.length && n <= max; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdbff && i + 1 < s.length) {
      const d = s.charCodeAt(i + 1);
      if (d >= 0xdc00 && d <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

function object(payload, what) {
  if (!isObject(payload)) throw validation(`${what} must be an object`);
  return payload;
}

/** A string of 1..max characters, not only whitespace. */
function id(value, name, max = MAX_ID_CHARS) {
  if (value === undefined || value === null) throw validation(`${name} is required`);
  if (typeof value !== 'string' || value === '' || BLANK_RE.test(value)) {
    throw validation(`${name} must be a non-empty string`);
  }
  if (charCount(value, max) > max) throw validation(`${name} must be at most ${max} characters`);
  return value;
}

function title(value) {
  if (value === undefined || value === null) throw validation('title is required');
  if (typeof value !== 'string') throw validation('title must be a string');
  if (value === '' || BLANK_RE.test(value)) throw validation('title must be a non-empty string');
  if (charCount(value, MAX_TITLE_CHARS) > MAX_TITLE_CHARS) {
    throw validation(`title must be at most ${MAX_TITLE_CHARS} characters`);
  }
  return value;
}

function pageLimit(value) {
  if (value === undefined || value === null) return DEFAULT_PAGE;
  if (!Number.isInteger(value) || value < 1 || value > MAX_PAGE) {
    throw validation(`limit must be an integer from 1 to ${MAX_PAGE}`);
  }
  return value;
}

/** An http(s) URL with a host and no whitespace or control characters. */
export function isHttpUrl(text) {
  if (/[\p{White_Space}\p{Cc}]/u.test(text)) return false;
  let url;
  try {
    url = new URL(text);
  } catch {
    return false;
  }
  return (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
}

export const chatRef = (payload, event) => ({ chatId: id(object(payload, `${event} payload`).chatId, 'chatId') });

export function sendMessage(payload) {
  const p = object(payload, 'message:send payload');
  const chatId = id(p.chatId, 'chatId');
  const { body } = p;
  if (body === undefined || body === null) throw validation('body is required');
  if (typeof body !== 'string') throw validation('body must be a string');
  if (body === '') throw validation('body must not be empty');
  if (!body.isWellFormed()) throw validation('body must be valid Unicode (no lone surrogates)');
  if (charCount(body, MAX_BODY_CHARS) > MAX_BODY_CHARS) {
    throw validation(`body must be at most ${MAX_BODY_CHARS} characters`);
  }
  if (BLANK_RE.test(body)) throw validation('body must not be only whitespace');
  if (p.clientId === undefined || p.clientId === null) throw validation('clientId is required');
  if (typeof p.clientId !== 'string' || !UUID_RE.test(p.clientId)) throw validation('clientId must be a UUID string');
  const kind = p.kind ?? 'text';
  if (kind !== 'text' && kind !== 'image') throw validation('kind must be "text" or "image"');
  if (kind === 'image' && !isHttpUrl(body)) throw validation('body of an image message must be an http(s) URL');
  return { chatId, body, clientId: p.clientId.toLowerCase(), kind };
}

export function readReceipt(payload) {
  const p = object(payload, 'receipt:read payload');
  return { chatId: id(p.chatId, 'chatId'), messageId: id(p.messageId, 'messageId') };
}

export function ping(payload) {
  if (payload !== undefined && payload !== null && !isObject(payload)) {
    throw validation('presence:ping payload must be an object');
  }
}

function memberIds(value) {
  if (value === undefined || value === null) throw validation('memberIds is required');
  if (!Array.isArray(value)) throw validation('memberIds must be an array of user ids');
  if (value.length > MAX_MEMBER_IDS) throw validation(`memberIds must have at most ${MAX_MEMBER_IDS} entries`);
  const members = new Set();
  value.forEach((entry, i) => members.add(id(entry, `memberIds[${i}]`, MAX_ID_CHARS)));
  return [...members];
}

/** `{ kind: "dm", memberIds: [otherId] }` or `{ kind: "group", memberIds, title }`. */
export function createChat(payload, what = 'chat:create payload') {
  const p = object(payload, what);
  if (p.kind === undefined || p.kind === null) throw validation('kind is required');
  if (p.kind === 'dm') {
    if (p.title !== undefined && p.title !== null) throw validation('a dm has no title');
    const members = memberIds(p.memberIds);
    if (members.length !== 1) throw validation('memberIds of a dm must name exactly one other user');
    return { kind: 'dm', memberIds: members, title: null };
  }
  if (p.kind === 'group') {
    const members = memberIds(p.memberIds);
    return { kind: 'group', memberIds: members, title: title(p.title) };
  }
  throw validation('kind must be "dm" or "group"');
}

export function syncMessages(payload) {
  const p = object(payload, 'messages:sync payload');
  const chatId = id(p.chatId, 'chatId');
  if (p.afterSeq === undefined || p.afterSeq === null) throw validation('afterSeq is required');
  if (!Number.isSafeInteger(p.afterSeq) || p.afterSeq < 0) throw validation('afterSeq must be an integer >= 0');
  return { chatId, afterSeq: p.afterSeq, limit: pageLimit(p.limit) };
}

// --- HTTP ---------------------------------------------------------------------------------

export const pathId = (value, name) => id(value, name);

export function renameBody(body) {
  return { title: title(object(body, 'request body').title) };
}

export function addMemberBody(body) {
  return { userId: id(object(body, 'request body').userId, 'userId') };
}

/** A query-string integer: ASCII digits only. */
function queryInteger(raw, name) {
  if (typeof raw !== 'string' || !/^[0-9]{1,15}$/.test(raw)) throw validation(`${name} must be an integer >= 0`);
  return Number(raw);
}

/** `afterSeq`, `beforeSeq` (not both) and `limit` of GET /api/v1/chats/:chatId/messages. */
export function historyQuery(query) {
  const { afterSeq, beforeSeq, limit } = query;
  if (afterSeq !== undefined && beforeSeq !== undefined) {
    throw validation('afterSeq and beforeSeq cannot be combined');
  }
  return {
    afterSeq: afterSeq === undefined ? null : queryInteger(afterSeq, 'afterSeq'),
    beforeSeq: beforeSeq === undefined ? null : queryInteger(beforeSeq, 'beforeSeq'),
    limit: limit === undefined ? DEFAULT_PAGE : pageLimit(/^[0-9]{1,4}$/.test(String(limit)) ? Number(limit) : NaN),
  };
}
