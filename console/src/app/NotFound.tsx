import { Link } from 'wouter';
import { Page } from '../components/Page';

export function NotFound() {
  return (
    <Page title="Page not found">
      <p>There is no page at this address in the console.</p>
      <p>
        <Link href="/keys">Go to API Keys</Link>
      </p>
    </Page>
  );
}
