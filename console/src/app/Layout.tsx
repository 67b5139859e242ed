/**
 * The signed-in console: a header (the console's name, the navigation, the account bar) and the page
 * in <main>, each page at its own URL. The page is shown anew when the account changes.
 */
import type { ReactNode } from 'react';
import { Link, useRoute } from 'wouter';
import { markNavigation } from '../components/Page';
import { AccountBar } from '../features/account/AccountBar';
import { useAccount } from '../lib/account';

function NavLink({ href, children }: { readonly href: string; readonly children: ReactNode }) {
  const [active] = useRoute(href);
  return (
    <Link href={href} className="nav-link" aria-current={active ? 'page' : undefined} onClick={() => markNavigation(href)}>
      {children}
    </Link>
  );
}

export function Layout({ children }: { readonly children: ReactNode }) {
  const { accountId } = useAccount();
  return (
    <>
      <a href="#main" className="skip-link">
        Skip to main content
      </a>
      <header className="header">
        <div className="header-inner">
          <p className="brand">Knouds console</p>
          <nav aria-label="Main" className="nav">
            <ul>
              <li>
                <NavLink href="/keys">API Keys</NavLink>
              </li>
              <li>
                <NavLink href="/webhooks">Webhooks</NavLink>
              </li>
              <li>
                <NavLink href="/audit">Audit log</NavLink>
              </li>
            </ul>
          </nav>
          <AccountBar />
        </div>
      </header>
      <main id="main" className="main" key={accountId}>
        {children}
      </main>
    </>
  );
}
