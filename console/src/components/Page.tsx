/**
 * A page of the console: its heading (the page's name, also in the document title). After a
 * navigation inside the console the heading takes focus, so a screen reader hears where it is; also
 * when the link led to the same page with other filters (a key's history from the Audit log), whose
 * link is then gone with the table it was in.
 */
import { useEffect, useRef, type ReactNode } from 'react';
import { useLocation, useSearch } from 'wouter';

let navigated = false;

/**
 * Called by the navigation links: the next page's heading takes focus. A link to the URL shown now
 * (`href` given) changes nothing, and leaves no request behind for a later render to take.
 */
export function markNavigation(href?: string): void {
  if (href !== undefined) {
    const to = new URL(href, window.location.href);
    if (to.pathname === window.location.pathname && to.search === window.location.search) return;
  }
  navigated = true;
}

/** The page's heading (Page's h1, focusable with tabIndex -1), or null outside a page. */
export const pageHeading = () => document.querySelector<HTMLElement>('main h1');

export function Page({ title, children }: { readonly title: string; readonly children: ReactNode }) {
  const heading = useRef<HTMLHeadingElement>(null);
  const [location] = useLocation();
  const search = useSearch();
  useEffect(() => {
    document.title = `${title} · Knouds console`;
  }, [title]);
  useEffect(() => {
    if (navigated) {
      navigated = false;
      heading.current?.focus();
    }
  }, [title, location, search]);
  return (
    <>
      <h1 ref={heading} tabIndex={-1} className="page-title">
        {title}
      </h1>
      {children}
    </>
  );
}
