/**
 * Usage: requests today and this month, the limit per minute, last used, and the requests of each of
 * the last 30 days as SVG bars, named "Requests per day, last 30 days", the numbers also in a table
 * behind "Show the requests of each day" (for the keyboard and screen readers alike).
 */
import { useEffect, useId, useRef, useState } from 'react';
import { Dialog } from '../../components/Dialog';
import { ErrorMessage, StatusMessage } from '../../components/Messages';
import { isStale, messageOf } from '../../api/errors';
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
      {/* The numbers of each day, for the keyboard and screen readers as for a pointer's hover. */}
      <details className="chart-numbers">
        <summary>Show the requests of each day</summary>
        <table className="chart-table">
          <caption className="visually-hidden">{CHART_NAME}</caption>
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
      </details>
    </figure>
  );
}

export function UsageDialog({
  apiKey,
  onClose,
  onStale,
}: {
  readonly apiKey: Key;
  readonly onClose: () => void;
  /** The key is gone (deleted, or rotated with no grace): show the list anew. */
  readonly onStale: () => void;
}) {
  const [usage, setUsage] = useState<KeyUsage | null>(null);
  /** What went wrong, and whether asking again may help (not when the key is gone). */
  const [problem, setProblem] = useState<{ readonly message: string; readonly retry: boolean } | null>(null);
  const [attempt, setAttempt] = useState(0);
  const closeButton = useRef<HTMLButtonElement>(null);
  const onStaleRef = useRef(onStale);
  useEffect(() => {
    onStaleRef.current = onStale;
  });
  useEffect(() => {
    let current = true;
    keyUsage(apiKey.key_id).then(
      (u) => current && setUsage(u),
      (error: unknown) => {
        if (!current) return;
        const stale = isStale(error);
        if (stale) onStaleRef.current();
        setProblem({ message: messageOf(error), retry: !stale });
      },
    );
    return () => {
      current = false;
    };
  }, [apiKey.key_id, attempt]);

  return (
    <Dialog title={`Usage of ${apiKey.name}`} onClose={onClose} className="dialog-wide">
      <div className="dialog-body">
        {problem ? (
          <ErrorMessage>
            {problem.message}{' '}
            {problem.retry && (
              <button
                type="button"
                className="button button-small"
                onClick={() => {
                  // The button goes with the message: the focus stays in the dialog, on Close.
                  closeButton.current?.focus();
                  setProblem(null);
                  setAttempt((a) => a + 1);
                }}
              >
                Try again
              </button>
            )}
          </ErrorMessage>
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
          <button ref={closeButton} type="button" className="button button-primary" onClick={onClose}>
            Close
          </button>
        </div>
      </div>
    </Dialog>
  );
}
