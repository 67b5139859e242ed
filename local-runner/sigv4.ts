/**
 * Checks AWS Signature Version 4 on requests to the runner's Lambda API, as AWS does: the request must
 * carry a session token the runner gave one of its functions, and a signature that the same signer the
 * SDK uses (`@smithy/signature-v4`), fed that function's secret, computes again from the request. Nothing
 * here is SigV4 crypto of its own: it only takes the request apart and compares.
 *
 * No replay cache, as on AWS: a signed request can be sent again within the clock-skew window (5 minutes),
 * which needs a copy of the request (traffic on loopback, readable only to the machine's administrator).
 */
import { timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Sha256 } from '@smithy/core/checksum';
import { HttpRequest } from '@smithy/core/protocols';
import { toHex } from '@smithy/core/serde';
import { SignatureV4 } from '@smithy/signature-v4';

/** What a function signs with (its Lambda environment's credentials). */
export interface SigningIdentity {
  /** Who it is, for the log. */
  readonly name: string;
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken: string;
}

/** A refusal as AWS words it; `reason` is for the runner's log (it holds no secret). */
export interface Refusal {
  readonly errorType: 'UnrecognizedClientException' | 'InvalidSignatureException';
  readonly message: string;
  readonly reason: string;
}

/** AWS's allowance for clock skew between the signer and the service. */
export const MAX_CLOCK_SKEW_MS = 5 * 60 * 1000;

const INVALID_TOKEN = 'The security token included in the request is invalid.';
const SIGNATURE_MISMATCH =
  'The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.';
const AUTHORIZATION =
  /^AWS4-HMAC-SHA256 Credential=([^/\s,]+)\/(\d{8})\/([^/\s,]+)\/([^/\s,]+)\/aws4_request,\s*SignedHeaders=([a-z0-9;-]+),\s*Signature=([0-9a-f]{64})$/;

const unrecognized = (reason: string): Refusal => ({ errorType: 'UnrecognizedClientException', message: INVALID_TOKEN, reason });
const invalid = (reason: string, message = SIGNATURE_MISMATCH): Refusal => ({ errorType: 'InvalidSignatureException', message, reason });

/** `20260115T093000Z` → its instant, or undefined. */
function parseAmzDate(text: string): Date | undefined {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z$/.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h, mi, s] = m.map(Number) as [number, number, number, number, number, number, number];
  const date = new Date(Date.UTC(y, mo - 1, d, h, mi, s));
  return Number.isNaN(date.getTime()) ? undefined : date;
}

async function sha256Hex(body: Buffer): Promise<string> {
  const hash = new Sha256();
  hash.update(body);
  return toHex(await hash.digest());
}

const amzDate = (ms: number) => new Date(ms).toISOString().replace(/[-:]|\.\d{3}/g, '');

const headerText = (headers: IncomingHttpHeaders, name: string): string | undefined => {
  const value = headers[name];
  return Array.isArray(value) ? value.join(',') : value;
};

export interface SignedRequest {
  readonly method: string;
  /** The request target as received (path and query, still percent-encoded). */
  readonly url: string;
  readonly headers: IncomingHttpHeaders;
}

/** The parts of a request checked before its body is read. */
export interface Checked {
  readonly identity: SigningIdentity;
  readonly signingDate: Date;
  readonly signedHeaders: readonly string[];
  readonly signature: string;
}

export class SigV4Verifier {
  private readonly signers = new Map<string, SignatureV4>();

  constructor(
    /** Session token → the identity it belongs to. */
    private readonly identities: ReadonlyMap<string, SigningIdentity>,
    private readonly region: string,
    private readonly service: string,
    private readonly now: () => number = Date.now,
  ) {}

  /**
   * What can be checked from the headers alone: a known session token with its access key id, the
   * signature's form and scope, its age. Refuses before the body is read.
   */
  checkHeaders(request: SignedRequest, readHeaders: readonly string[]): Checked | Refusal {
    const authorization = headerText(request.headers, 'authorization');
    const token = headerText(request.headers, 'x-amz-security-token');
    if (!authorization) return unrecognized('no signature (no Authorization header)');
    if (!token) return unrecognized('no session token (x-amz-security-token)');
    const identity = this.identities.get(token);
    if (!identity) return unrecognized('unknown session token');
    const m = AUTHORIZATION.exec(authorization.trim());
    if (!m) return invalid('malformed Authorization header', "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' (AWS4-HMAC-SHA256).");
    const [, accessKeyId, scopeDate, scopeRegion, scopeService, signedHeaderList, signature] = m as unknown as [string, string, string, string, string, string, string];
    if (accessKeyId !== identity.accessKeyId) return unrecognized(`access key id does not belong to ${identity.name}'s session token`);
    if (scopeRegion !== this.region || scopeService !== this.service) {
      return invalid(`credential scope ${scopeRegion}/${scopeService}, expected ${this.region}/${this.service}`, `Credential should be scoped to a valid region and to service ${this.service}.`);
    }
    const dateText = headerText(request.headers, 'x-amz-date') ?? '';
    const signingDate = parseAmzDate(dateText);
    if (!signingDate) return invalid('no or malformed x-amz-date', 'Missing or malformed X-Amz-Date header.');
    if (dateText.slice(0, 8) !== scopeDate) return invalid('credential scope date differs from x-amz-date');
    const now = this.now();
    if (signingDate.getTime() < now - MAX_CLOCK_SKEW_MS) {
      return invalid(
        'signature expired',
        `Signature expired: ${dateText} is now earlier than ${amzDate(now - MAX_CLOCK_SKEW_MS)} (${amzDate(now)} - 5 min.)`,
      );
    }
    if (signingDate.getTime() > now + MAX_CLOCK_SKEW_MS) {
      return invalid(
        'signature not yet current',
        `Signature not yet current: ${dateText} is still later than ${amzDate(now + MAX_CLOCK_SKEW_MS)} (${amzDate(now)} + 5 min.)`,
      );
    }
    const signedHeaders = signedHeaderList.split(';');
    // Every header this request is acted on by must be covered by the signature.
    for (const name of ['host', 'x-amz-date', 'x-amz-security-token', ...readHeaders]) {
      if (request.headers[name] !== undefined && !signedHeaders.includes(name)) return invalid(`header ${name} is not signed`);
    }
    if (!signedHeaders.includes('host')) return invalid('header host is not signed');
    return { identity, signingDate, signedHeaders, signature };
  }

  /** Computes the signature again over the request and its body; undefined when it matches. */
  async checkSignature(request: SignedRequest, checked: Checked, body: Buffer): Promise<Refusal | undefined> {
    const { identity } = checked;
    const declared = headerText(request.headers, 'x-amz-content-sha256');
    if (declared !== undefined && declared !== (await sha256Hex(body))) {
      // The signer would take the declared hash on trust: it must be the body's.
      return invalid('x-amz-content-sha256 does not match the body', "The provided 'x-amz-content-sha256' header does not match what was computed.");
    }
    const headers: Record<string, string> = {};
    for (const name of checked.signedHeaders) {
      const value = headerText(request.headers, name);
      if (value === undefined) return invalid(`signed header ${name} is missing`);
      headers[name] = value;
    }
    const target = new URL(request.url, 'http://localhost');
    const query: Record<string, string | string[]> = {};
    for (const key of new Set(target.searchParams.keys())) {
      const values = target.searchParams.getAll(key);
      query[key] = values.length === 1 ? values[0]! : values;
    }
    const pathEnd = request.url.indexOf('?');
    const toSign = new HttpRequest({
      method: request.method,
      protocol: 'http:',
      hostname: target.hostname,
      path: pathEnd < 0 ? request.url : request.url.slice(0, pathEnd),
      query,
      headers,
      body,
    });
    const signed = await this.signer(identity).sign(toSign, {
      signingDate: checked.signingDate,
      // Sign exactly what the caller signed, even headers the signer would otherwise leave out.
      signableHeaders: new Set(checked.signedHeaders),
    });
    const expected = /Signature=([0-9a-f]{64})$/.exec(String(signed.headers['authorization']))?.[1] ?? '';
    const given = Buffer.from(checked.signature);
    if (expected.length !== given.length || !timingSafeEqual(Buffer.from(expected), given)) {
      return invalid('signature does not match');
    }
    return undefined;
  }

  private signer(identity: SigningIdentity): SignatureV4 {
    let signer = this.signers.get(identity.sessionToken);
    if (!signer) {
      const { accessKeyId, secretAccessKey, sessionToken } = identity;
      signer = new SignatureV4({
        credentials: { accessKeyId, secretAccessKey, sessionToken },
        region: this.region,
        service: this.service,
        sha256: Sha256,
        uriEscapePath: true,
      });
      this.signers.set(identity.sessionToken, signer);
    }
    return signer;
  }
}

export const isRefusal = (value: Checked | Refusal | undefined): value is Refusal => value !== undefined && 'errorType' in value;
