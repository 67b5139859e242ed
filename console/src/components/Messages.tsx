/** Results and states in plain words, announced to screen readers. */
import type { ReactNode } from 'react';

/** An error: role="alert" (announced at once). */
export function ErrorMessage({ children, id }: { readonly children: ReactNode; readonly id?: string }) {
  return (
    <div role="alert" id={id} className="message message-error">
      {children}
    </div>
  );
}

/** A result or a state (loading, saved): role="status" (announced politely). */
export function StatusMessage({ children, id }: { readonly children: ReactNode; readonly id?: string }) {
  return (
    <div role="status" id={id} className="message message-status">
      {children}
    </div>
  );
}

/** A lasting explanation (why something cannot be done here). */
export function Notice({ children, id }: { readonly children: ReactNode; readonly id?: string }) {
  return (
    <div id={id} className="message message-notice">
      {children}
    </div>
  );
}
