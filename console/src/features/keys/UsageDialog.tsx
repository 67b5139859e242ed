/**
 * Usage: requests today and this month, the limit per minute, last used, and the requests of each of
 * the last 30 days as SVG bars, named "Requests per day, last 30 days", the numbers also in a table for
 * screen readers.
 */
import { useEffect, useId, useState } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { messageOf } from '../../api/errors';
import { keyUsage, USAGE_DAYS, type DailyRequests, type Key, type KeyUsage } from './api';
import { formatDateTime } from './format';

const CHART_NAME = `Requests per day, last ${USAGE_DAYS} days`;
const WIDTH = 600;
const HEIGHT = 160;

function dayLabel(date: string): string {
  return new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' }).format(new Date(`${date}T00:00:00Z`));
}

function Chart({ days }: { readonly days: readonly DailyRequests[] }) {
  const titleId = useId();
  const max = Math.max(1, ...days.map((d) => d.requests));
  const slot = WIDTH / Math.max(1, days.length);
  const total = days.reduce((sum, d) => sum + d.requests, 0);
  const busiest = Math.max(0, ...days.map((d) => d.requests));
  return (
    <figure className="chart">
      <figcaption id={titleId}>{CHART_NAME}</figcaption>
      <svg viewBox={`0 0 ${WIDTH} ${HEIGHT}`} role="img" aria-labelledby={titleId} className="chart-svg" preserveAspectRatio="none">
        <line x1="0" y1={HEIGHT} x2={WIDTH} y2={HEIGHT} className="chart-axis" />
        {days.map((d, i) => {
          const h = d.requests === 0 ? 0 : Math.max(2, (d.requests / max) * (HEIGHT - 10));
          return (
            <rect key={d.date} x={i * slot + slot * 0.15} y={HEIGHT - h} width={slot * 0.7} height={h} className="chart-bar">
              <title>{`${dayLabel(d.date)}: ${d.requests}`}</title>
            </rect>
          );
        })}
      </svg>
      {days.length > 0 && (
        <p className="chart-range" aria-hidden="true">
          <span>{dayLabel(days[0]!.date)}</span>
          <span>{dayLabel(days.at(-1)!.date)}</span>
        </p>
      )}
      <p className="hint">
        {total.toLocaleString()} requests in these {days.length} days; the busiest day had {busiest.toLocaleString()}.
      </p>
      <table className="visually-hidden">
        <caption>{CHART_NAME}</caption>
        <thead>
          <tr>
            <th scope="col">Day (UTC)</th>
            <th scope="col">Requests</th>
          </tr>
        </thead>
        <tbody>
          {days.map((d) => (
            <tr key={d.date}>
              <th scope="row">{d.date}</th>
              <td>{d.requests}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </figure>
  );
}

export function UsageDialog({ apiKey, onClose }: { readonly apiKey: Key; readonly onClose: () => void }) {
  const [usage, setUsage] = useState<KeyUsage | null>(null);
  const [problem, setProblem] = useState<string | null>(null);
  useEffect(() => {
    let current = true;
    keyUsage(apiKey.key_id).then(
      (u) => current && setUsage(u),
      (error: unknown) => current && setProblem(messageOf(error)),
    );
    return () => {
      current = false;
    };
  }, [apiKey.key_id]);

  return (
    <Dialog title={`Usage of ${apiKey.name}`} onClose={onClose} className="dialog-wide">
      <div className="dialog-body">
        {problem ? (
          <ErrorMessage>{problem}</ErrorMessage>
        ) : !usage ? (
          <StatusMessage>Loading the usage…</StatusMessage>
        ) : (
          <>
            <dl className="stats">
              <div>
                <dt>Requests today</dt>
                <dd>{usage.requests_today.toLocaleString()}</dd>
              </div>
              <div>
                <dt>Requests this month</dt>
                <dd>{usage.requests_this_month.toLocaleString()}</dd>
              </div>
              <div>
                <dt>Limit per minute</dt>
                <dd>{usage.rate_limit.toLocaleString()}</dd>
              </div>
              <div>
                <dt>Last used</dt>
                <dd className="stat-text">{usage.last_used ? formatDateTime(usage.last_used) : 'Never'}</dd>
              </div>
            </dl>
            <Chart days={usage.daily} />
            <p className="hint">Days and months are counted in UTC.</p>
          </>
        )}
        <div className="dialog-actions">
          <button type="button" className="button button-primary" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </Dialog>
  );
}
