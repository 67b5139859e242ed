/**
 * Its children, in a box that takes no room of its own (`display: contents`). When they leave the page while one of them holds the focus (a key's row
 * removed by the list's reload, "Try again" replaced by what it loads), the page's heading takes the
 * focus, so a keyboard or screen-reader user is not left on the page's body, at its top, with nothing
 * said. Nothing happens when something else took the focus meanwhile.
 */
import { useLayoutEffect, useRef, type ReactNode } from 'react';
import { pageHeading } from './Page';

export function KeepsFocus({ children }: { readonly children: ReactNode }) {
  const ref = useRef<HTMLDivElement>(null);
  useLayoutEffect(() => {
    const element = ref.current;
    // Run as the children unmount, before React removes their elements: the focus is still inside.
    return () => {
      if (!element?.contains(document.activeElement)) return;
      requestAnimationFrame(() => {
        const now = document.activeElement;
        if (now === null || now === document.body || !now.isConnected) pageHeading()?.focus();
      });
    };
  }, []);
  return (
    <div ref={ref} className="keeps-focus">
      {children}
    </div>
  );
}
