// A webhook receiver that verifies Knouds signatures (Standard Webhooks). For trying webhooks locally:
//   WEBHOOK_SECRET=whsec_… node examples/webhook-receiver.mjs 4000
// It prints each verified event, and answers 401 to anything whose signature does not match.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer } from 'node:http';

const secret = process.env.WEBHOOK_SECRET ?? '';
const port = Number(process.argv[2] ?? 4000);
if (!secret.startsWith('whsec_')) {
  console.error('set WEBHOOK_SECRET to the whsec_… secret from GET /v1/webhooks/secret');
  process.exit(1);
}

/** True when one of the `v1,` signatures is the HMAC of `id.timestamp.body`, sent within 5 minutes. */
export function verifyWebhook(secret, headers, body) {
  const id = headers['webhook-id'];
  const timestamp = headers['webhook-timestamp'];
  if (!id || !timestamp || Math.abs(Date.now() / 1000 - Number(timestamp)) > 300) return false;
  const key = Buffer.from(secret.slice('whsec_'.length), 'base64');
  const expected = createHmac('sha256', key).update(`${id}.${timestamp}.${body}`).digest();
  return String(headers['webhook-signature'] ?? '')
    .split(' ')
    .some((sig) => {
      const [version, value] = sig.split(',');
      const given = Buffer.from(value ?? '', 'base64');
      return version === 'v1' && given.length === expected.length && timingSafeEqual(given, expected);
    });
}

createServer((req, res) => {
  // The raw bytes, decoded once: decoding each chunk apart would break a character split between two.
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    const body = Buffer.concat(chunks).toString('utf8');
    if (!verifyWebhook(secret, req.headers, body)) {
      console.log('REJECTED: bad signature');
      res.writeHead(401).end();
      return;
    }
    const event = JSON.parse(body);
    // The webhook-id is the same on every attempt and redelivery of one webhook: deduplicate on it.
    console.log(`verified ${event.type}: ${event.data.execution_id} ${event.data.status} ${JSON.stringify(event.data.output)} (webhook-id ${req.headers['webhook-id']})`);
    res.writeHead(204).end();
  });
}).listen(port, '127.0.0.1', () => console.log(`webhook receiver on http://127.0.0.1:${port}/hooks`));
