/**
 * Calls held while a 2026-07-28 client decides (MRTR out). A 2025 server
 * asks its client something mid-call (sampling, elicitation, roots) and
 * waits on the same call for the answer; a 2026-07-28 client gets
 * `input_required` instead and answers by retrying the call. Between the
 * two, the call stays open at the server and is held here, under a handle
 * that only the `requestState` apiary handed out can name.
 *
 * `requestState` passes through the client, so it is attacker-controlled:
 * it is signed (HMAC-SHA256, a random key per endpoint and process) and
 * binds the handle, the round, the method and name of the call, the
 * principal (a tag of the bearer token, never the token) and an expiry.
 * A retry's state is checked in that order and refused saying which check
 * failed. The key is never written anywhere: a restarted controller holds
 * no calls, and its new key makes every old state fail the signature.
 *
 * Held calls are bounded in number (per endpoint) and in time: one that
 * nobody retries is given up, which answers the server's questions with an
 * error and cancels the call at the server.
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { ErrorCodes } from './jsonrpc.js';

/**
 * How long a held call waits for its retry. A person may have to read and
 * fill an elicitation form, so a minute is short; the SDK's own bound for a
 * round (`inputRequired.roundTimeoutMs`) is 10 minutes, but each held call
 * keeps a request open at a server process that serves other clients too,
 * and most 2025 servers give up on their question well before (the SDK v1's
 * default request timeout is 60 s; server-everything's elicitation waits 10
 * minutes). Five minutes serves a person, not an abandoned tab.
 */
export const HELD_CALL_TIMEOUT_MS = 5 * 60_000;

/** Held calls per endpoint: past it a server's question is refused (to the server), so no client can pin memory by never retrying. */
export const MAX_HELD_CALLS = 64;

export interface HeldCallsOptions {
  timeoutMs?: number;
  max?: number;
}

/** The client capability each question a server may ask needs (the only questions a 2026-07-28 client can be asked). */
export const INPUT_CAPABILITY: Readonly<Record<string, string>> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** The methods whose result may be `input_required` in 2026-07-28. */
export const MAY_ASK: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/** What a held call continues: the call (method and its tool, prompt or resource) and who made it. */
export interface Binding {
  method: string;
  name: string;
  /** A hash of the bearer token ('' without one). */
  principal: string;
}

/** What a held thing does when it is given up (no retry in time, the endpoint closing). */
export interface Holdable {
  expire(reason: string): void;
}

/** Which check a retry's requestState failed. */
export type StateFault = 'forged' | 'expired' | 'mismatched' | 'unknown' | 'stale';

export interface Refusal {
  code: number;
  message: string;
  data: { reason: 'invalid_request_state'; fault: StateFault };
}

/** What a requestState carries (readable by the client: nothing secret in it). */
interface Payload {
  /** The held call's handle. */
  h: string;
  /** Its round: a state from an earlier round no longer fits. */
  r: number;
  m: string;
  n: string;
  /** The principal's tag. */
  p: string;
  /** Expiry, ms since the epoch. */
  e: number;
}

interface Held<T> {
  item: T;
  round: number;
  binding: Binding;
  timer: NodeJS.Timeout;
}

/**
 * What every state apiary mints starts with. A retry whose requestState does
 * not is not apiary's to check: a 2026-07-28 server behind apiary asked for
 * that input itself, and its own state goes back to it as the client gave it.
 */
const STATE_VERSION = 'apiary-mrtr-v1';

export class HeldCalls<T extends Holdable> {
  readonly #key = randomBytes(32);
  readonly #held = new Map<string, Held<T>>();
  readonly #timeoutMs: number;
  readonly #max: number;

  constructor(options: HeldCallsOptions = {}) {
    this.#timeoutMs = options.timeoutMs ?? HELD_CALL_TIMEOUT_MS;
    this.#max = options.max ?? MAX_HELD_CALLS;
  }

  get size(): number {
    return this.#held.size;
  }

  get max(): number {
    return this.#max;
  }

  /** Holds `item` under `handle` for its round; gives the requestState that names it, or undefined when the endpoint holds its maximum. */
  hold(handle: string, round: number, item: T, binding: Binding): string | undefined {
    if (this.#held.size >= this.#max) return undefined;
    const expires = Date.now() + this.#timeoutMs;
    const timer = setTimeout(() => this.#expire(handle, `no retry with its answers came within ${this.#timeoutMs / 1000} s`), this.#timeoutMs);
    timer.unref();
    this.#held.set(handle, { item, round, binding, timer });
    return this.#seal({ h: handle, r: round, m: binding.method, n: binding.name, p: this.#tag(binding.principal), e: expires });
  }

  /** Did apiary mint this state (whether or not it verifies)? Others belong to the server behind. */
  static minted(state: string): boolean {
    return state.startsWith(`${STATE_VERSION}.`);
  }

  /** The held call a retry's requestState names, taken out of the hold (a second retry with the same state finds nothing), or why not. */
  claim(state: string, retry: Binding): { item: T } | { refused: Refusal } {
    const payload = this.#open(state);
    if (payload === undefined) return refuse('forged', 'requestState does not verify: this apiary process did not issue it (it was altered, made up, or issued before the controller restarted)');
    if (payload.e <= Date.now()) return refuse('expired', `requestState expired at ${new Date(payload.e).toISOString()}: the call waited for its input longer than apiary holds calls and was given up`);
    if (payload.m !== retry.method || payload.n !== retry.name) return refuse('mismatched', `requestState belongs to ${payload.m} "${payload.n}", not to ${retry.method} "${retry.name}": retry the call that returned it, with the same params`);
    if (payload.p !== this.#tag(retry.principal)) return refuse('mismatched', 'requestState was issued to another client (its credentials differ from this request\'s)');
    const held = this.#held.get(payload.h);
    if (held === undefined) return refuse('unknown', 'requestState names no call apiary is holding: it was answered by an earlier retry, given up, or its server went away');
    if (held.round !== payload.r) return refuse('stale', `requestState is from round ${payload.r} of this call, which now waits on the answers of round ${held.round}`);
    this.#held.delete(payload.h);
    clearTimeout(held.timer);
    return { item: held.item };
  }

  /** Gives up every held call (the endpoint is closing). */
  close(reason: string): void {
    for (const handle of [...this.#held.keys()]) this.#expire(handle, reason);
  }

  #expire(handle: string, reason: string): void {
    const held = this.#held.get(handle);
    if (held === undefined) return;
    this.#held.delete(handle);
    clearTimeout(held.timer);
    held.item.expire(reason);
  }

  /** The principal as the state carries it: keyed, so the state says nothing of the token. */
  #tag(principal: string): string {
    return this.#mac(`principal:${principal}`).subarray(0, 16).toString('base64url');
  }

  #mac(text: string): Buffer {
    return createHmac('sha256', this.#key).update(text).digest();
  }

  #seal(payload: Payload): string {
    const body = `${STATE_VERSION}.${Buffer.from(JSON.stringify(payload)).toString('base64url')}`;
    return `${body}.${this.#mac(`state:${body}`).toString('base64url')}`;
  }

  /** The payload of a state this endpoint signed, or undefined (constant-time on the signature). */
  #open(state: string): Payload | undefined {
    const dot = state.lastIndexOf('.');
    if (!state.startsWith(`${STATE_VERSION}.`) || dot <= STATE_VERSION.length) return undefined;
    const body = state.slice(0, dot);
    const given = Buffer.from(state.slice(dot + 1), 'base64url');
    const expected = this.#mac(`state:${body}`);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) return undefined;
    try {
      return JSON.parse(Buffer.from(body.slice(STATE_VERSION.length + 1), 'base64url').toString('utf8')) as Payload;
    } catch {
      return undefined;
    }
  }
}

function refuse(fault: StateFault, message: string): { refused: Refusal } {
  return { refused: { code: ErrorCodes.InvalidParams, message, data: { reason: 'invalid_request_state', fault } } };
}

/** Who a request comes from, as held calls are bound to it: a hash of its Authorization header ('' without one). */
export function principalOf(authorization: string | undefined): string {
  return authorization === undefined ? '' : createHash('sha256').update(authorization).digest('base64url');
}

/** What a call is about: the tool or prompt name, or the resource URI. */
export function callName(method: string, params: Record<string, unknown> | undefined): string {
  const name = method === 'resources/read' ? params?.['uri'] : params?.['name'];
  return typeof name === 'string' ? name : '';
}
