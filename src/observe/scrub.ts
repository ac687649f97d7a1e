/**
 * Replaces known secret values (upstream credentials) wherever they appear in a string. Used on every
 * log line, audit record and text handed to an agent, so a credential echoed by an upstream or
 * carried in an error message cannot leak.
 */
export class Scrubber {
  private secrets: string[];

  constructor(secrets: readonly string[]) {
    // Longest first, so a secret containing another is replaced whole.
    this.secrets = [...new Set(secrets)].filter((s) => s.length > 0).sort((a, b) => b.length - a.length);
  }

  /** Learns secrets that appear at run time (a rotated file, a fresh OAuth2 token). */
  add(values: readonly string[]): void {
    const fresh = values.filter((v) => v.length > 0 && !this.secrets.includes(v));
    if (fresh.length === 0) return;
    // Old values stay: a response may still echo a credential that was just rotated out.
    this.secrets = [...this.secrets, ...fresh].sort((a, b) => b.length - a.length);
  }

  get empty(): boolean {
    return this.secrets.length === 0;
  }

  scrub(text: string): string {
    let out = text;
    for (const s of this.secrets) if (out.includes(s)) out = out.split(s).join('[REDACTED:credential]');
    return out;
  }

  /** Whether any secret occurs in the text (cheaper than scrubbing when nothing does). */
  finds(text: string): boolean {
    for (const s of this.secrets) if (text.includes(s)) return true;
    return false;
  }
}
