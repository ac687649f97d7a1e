/**
 * How flagged fields of an upstream response are named in what the gateway shows or records (the
 * injection screen's note and audit record, the injectionSuspected alert, validation errors): the
 * path segments are upstream-chosen text, so only plain names and indexes are shown. Its own module
 * so that the alerts can name fields without loading the injection screen (issue 22: start-up).
 */

/** A path segment shown as it is: a plain name or an array index; anything else is `*`. */
export const SAFE_SEGMENT = /^[A-Za-z0-9_.-]{1,40}$/;

/**
 * A flagged field's path as the gateway may show or record it: the JSON pointer's segments are
 * upstream-chosen text (keys), so each one is kept only if it is a plain name or an index, else
 * replaced by `*`; `''` (the whole body) stays `''`. The real path stays internal (redact and
 * withhold need it).
 */
export function safePath(path: string): string {
  if (path === '') return '';
  return path
    .slice(1)
    .split('/')
    .map((seg) => `/${SAFE_SEGMENT.test(seg) ? seg : '*'}`)
    .join('');
}

/** Text an upstream chose (a key name quoted in a message) as the gateway may show it: itself if plain, else `*`. */
export function safeName(name: string): string {
  return SAFE_SEGMENT.test(name) ? name : '*';
}

/** Paths listed at most, in the note, the audit record and the alert. */
export const MAX_PATHS_SHOWN = 10;

/**
 * The flagged fields as shown or recorded: safe paths (`safePath`), duplicates merged, at most
 * `max`, then `and N more`.
 */
export function shownPaths(
  flagged: readonly { path: string }[],
  max = MAX_PATHS_SHOWN,
  whole = '',
): string[] {
  const paths = [...new Set(flagged.map((f) => (f.path === '' ? whole : safePath(f.path))))];
  if (paths.length <= max) return paths;
  return [...paths.slice(0, max), `and ${paths.length - max} more`];
}
