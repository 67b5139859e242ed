/**
 * A modal dialog: the native <dialog> opened with showModal() (focus moves in, the page behind is inert,
 * Escape closes it), named by its heading. Mounted means open: the parent unmounts it to close it, and
 * every state inside is gone with it. On close, focus goes back to what had it before (the control that
 * opened the dialog), or to the page's heading when that control is gone (a deleted key's row).
 */
import { useEffect, useId, useLayoutEffect, useRef, type ReactNode } from 'react';
import { pageHeading } from './Page';

export interface DialogProps {
  readonly title: string;
  readonly onClose: () => void;
  /** While true, Escape and other close requests do not close the dialog (a request is in flight). */
  readonly busy?: boolean;
  readonly children: ReactNode;
  /** Extra class on the <dialog> (e.g. a wider one). */
  readonly className?: string;
  /** Where focus goes on close instead of the control that opened the dialog (null: that control). */
  readonly restoreFocus?: () => HTMLElement | null;
}

export function Dialog({ title, onClose, busy = false, children, className, restoreFocus }: DialogProps) {
  const ref = useRef<HTMLDialogElement>(null);
  const titleId = useId();
  const onCloseRef = useRef(onClose);
  const busyRef = useRef(busy);
  const restoreFocusRef = useRef(restoreFocus);
  useEffect(() => {
    onCloseRef.current = onClose;
    busyRef.current = busy;
    restoreFocusRef.current = restoreFocus;
  });

  useLayoutEffect(() => {
    const dialog = ref.current;
    if (!dialog) return undefined;
    const opener = document.activeElement instanceof HTMLElement ? document.activeElement : null;
    if (!dialog.open) dialog.showModal();
    // Escape (or another close request) closes the native dialog: tell the parent, which unmounts it.
    // React StrictMode's extra close() of a dialog opened again meanwhile is not a close: it is open.
    // While a request is in flight the dialog stays: Chromium honours a prevented `cancel` only once
    // between two user activations (a second Escape, which is none, closes it anyway), and closing
    // would lose the answer, for a new key the only sight of its secret.
    // Opened again, it gives the focus back to where it was in it, not to its first control.
    let focused: HTMLElement | null = null;
    const focusin = (event: FocusEvent) => {
      if (event.target instanceof HTMLElement) focused = event.target;
    };
    const closed = () => {
      if (dialog.open) return;
      if (!busyRef.current) {
        onCloseRef.current();
        return;
      }
      const back = focused;
      dialog.showModal();
      if (back?.isConnected && dialog.contains(back)) back.focus();
    };
    const cancel = (event: Event) => {
      if (busyRef.current) event.preventDefault();
    };
    dialog.addEventListener('close', closed);
    dialog.addEventListener('cancel', cancel);
    dialog.addEventListener('focusin', focusin);
    return () => {
      dialog.removeEventListener('close', closed);
      dialog.removeEventListener('cancel', cancel);
      dialog.removeEventListener('focusin', focusin);
      dialog.close();
      const target = restoreFocusRef.current?.() ?? (opener?.isConnected ? opener : pageHeading());
      target?.focus();
    };
  }, []);

  return (
    <dialog ref={ref} aria-labelledby={titleId} className={className ? `dialog ${className}` : 'dialog'}>
      <h2 id={titleId} className="dialog-title">
        {title}
      </h2>
      {children}
    </dialog>
  );
}
