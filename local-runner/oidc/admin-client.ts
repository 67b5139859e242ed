/**
 * What the admin CLI calls to manage the people of the running local provider: the same operations as
 * the in-process store (PeopleDirectory), over the provider's admin endpoint (admin.ts), with the URL and
 * token that `npm start` wrote in its state file (`state.oidc`). No import of the provider itself.
 */
import type { AddedPerson, PasswordReset, PeopleDirectory, Person } from './people.js';

/** What the state file holds about the local provider (the file is mode 0600: the token is a secret). */
export interface LocalOidcState {
  readonly issuer: string;
  /** `<issuer>/admin/people` */
  readonly adminUrl: string;
  readonly adminToken: string;
}

export class LocalOidcAdminError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

export class LocalOidcAdminClient implements PeopleDirectory {
  constructor(private readonly state: LocalOidcState) {}

  /** `under`: a path below the admin URL (`/password`). */
  private async call(method: string, email: string | undefined, body?: unknown, under = ''): Promise<{ status: number; json: unknown }> {
    const url = new URL(`${this.state.adminUrl}${under}`);
    if (email !== undefined && body === undefined) url.searchParams.set('email', email);
    let response: Response;
    try {
      response = await fetch(url, {
        method,
        headers: { authorization: `Bearer ${this.state.adminToken}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
    } catch (error) {
      throw new LocalOidcAdminError(`the local provider at ${url.origin} does not answer (is npm start running?): ${(error as Error).message}`, 0);
    }
    const json: unknown = await response.json().catch(() => null);
    if (response.status >= 400 && response.status !== 404) {
      const message = (json as { error?: unknown } | null)?.error;
      throw new LocalOidcAdminError(typeof message === 'string' ? message : `the local provider answered ${response.status}`, response.status);
    }
    return { status: response.status, json };
  }

  async addPerson(email: string): Promise<AddedPerson> {
    return (await this.call('POST', undefined, { email })).json as AddedPerson;
  }

  async findPerson(email: string): Promise<Person | undefined> {
    const { status, json } = await this.call('GET', email);
    return status === 404 ? undefined : (json as Person);
  }

  async listPeople(): Promise<Person[]> {
    return ((await this.call('GET', undefined)).json as { people: Person[] }).people;
  }

  async removePerson(email: string): Promise<boolean> {
    return (await this.call('DELETE', email)).status === 200;
  }

  async resetPassword(email: string): Promise<PasswordReset | undefined> {
    const { status, json } = await this.call('POST', undefined, { email }, '/password');
    if (status !== 404) return json as PasswordReset;
    // A provider started before the reset existed answers its unknown path so: not "no such person".
    if ((json as { error?: unknown } | null)?.error === 'not found') {
      throw new LocalOidcAdminError('this npm start is older than password resets: restart it (npm start) and try again', 501);
    }
    return undefined;
  }
}
