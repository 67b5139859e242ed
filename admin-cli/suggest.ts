/**
 * "Did you mean …?" for the admin CLI: the candidate nearest to a mistyped command word, flag or value,
 * by edit distance (fastest-levenshtein), or the one candidate it begins. Nothing when none is close, so
 * a suggestion is a likely fix, never a guess at random.
 */
import { distance } from 'fastest-levenshtein';

/** How many edits a word of this length may be from the candidate: 1 for short words, at most 3. */
const tolerance = (word: string) => Math.min(3, Math.max(1, Math.floor(word.length / 2)));

export function suggest(word: string, candidates: readonly string[]): string | undefined {
  if (word === '' || candidates.length === 0) return undefined;
  const lower = word.toLowerCase();
  let best: { candidate: string; d: number } | undefined;
  for (const candidate of candidates) {
    const d = distance(lower, candidate.toLowerCase());
    if (!best || d < best.d) best = { candidate, d };
  }
  if (best && best.candidate !== word && best.d <= tolerance(word)) return best.candidate;
  // An abbreviation of exactly one candidate (`rot` → `rotate`).
  const starting = candidates.filter((c) => c.toLowerCase().startsWith(lower));
  return starting.length === 1 ? starting[0] : undefined;
}
