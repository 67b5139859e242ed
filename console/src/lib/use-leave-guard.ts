/**
 * While a page holds what cannot be had again (a request that makes a key is in flight, or the new key's
 * secret is on screen), leaving it would lose that. While `held`:
 * - closing or reloading the tab makes the browser ask first (`beforeunload`);
 * - the browser's Back (or Forward) button stays on the page: one history entry of the same address is
 *   added, and a move away from it puts it back (the router sees no change) and calls `onHeld`.
 * - a session that ends (the token's hour, a 401) does not replace the page: it ends once nothing holds it.
 * When nothing holds the page any more, the added entry is taken off again, so Back then goes where it
 * would have gone. The router (wouter) has no navigation blocker; this is the one place that does it.
 */
import { useEffect, useRef } from 'react';
import { holdSession } from './auth';

const GUARD = 'knoudsLeaveGuard';

/** How many mounted guards hold the page; the entry, and the address it was added at. */
let holders = 0;
let entry: { readonly marker: string; readonly href: string } | null = null;
/** The session's hold while the page is held (let go with the entry). */
let sessionHold: (() => void) | null = null;
const heldCallbacks = new Set<() => void>();

const onGuardEntry = (): boolean => entry !== null && (history.state as Record<string, unknown> | null)?.[GUARD] === entry.marker;

function addEntry(href: string): void {
  const marker = crypto.randomUUID();
  entry = { marker, href };
  const state = history.state && typeof history.state === 'object' ? (history.state as Record<string, unknown>) : {};
  history.pushState({ ...state, [GUARD]: marker }, '', href);
}

function beforeUnload(event: BeforeUnloadEvent): void {
  event.preventDefault();
  // Older browsers ask only when returnValue is set.
  event.returnValue = '';
}

/**
 * Back or Forward left the added entry: add it again, at the held page's address. Registered for the
 * capture phase, so it runs before the router's own listener, which then finds the address unchanged.
 */
function popState(): void {
  if (holders === 0 || entry === null || onGuardEntry()) return;
  addEntry(entry.href);
  for (const callback of heldCallbacks) callback();
}

function hold(): void {
  holders += 1;
  if (holders > 1) return;
  window.addEventListener('beforeunload', beforeUnload);
  window.addEventListener('popstate', popState, { capture: true });
  sessionHold ??= holdSession();
  // Held again before an earlier release took its entry off: that entry still serves.
  if (!onGuardEntry()) addEntry(location.href);
}

function release(): void {
  holders -= 1;
  if (holders > 0) return;
  window.removeEventListener('beforeunload', beforeUnload);
  window.removeEventListener('popstate', popState, { capture: true });
  // A moment later, so that a guard released and held again in one update keeps the same entry.
  setTimeout(() => {
    if (holders > 0) return;
    if (onGuardEntry()) history.back();
    entry = null;
    // A session that ended meanwhile ends now (the page is replaced by "Session ended").
    const letGo = sessionHold;
    sessionHold = null;
    letGo?.();
  }, 0);
}

export function useLeaveGuard(held: boolean, onHeld?: () => void): void {
  const onHeldRef = useRef(onHeld);
  useEffect(() => {
    onHeldRef.current = onHeld;
  });
  useEffect(() => {
    if (!held) return undefined;
    const callback = () => onHeldRef.current?.();
    heldCallbacks.add(callback);
    hold();
    return () => {
      heldCallbacks.delete(callback);
      release();
    };
  }, [held]);
}
