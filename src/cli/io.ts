/** What every command of the `cachegrain` command shares: its output, its parsed arguments, its two kinds of failure. */

export interface Output {
  write(text: string): unknown;
}

export interface IO {
  out: Output;
  err: Output;
  /** The command's name, prefixed to every error line. */
  name: string;
}

export interface Parsed {
  positional: string[];
  config?: string;
  dryRun: boolean;
  alias?: string;
  soft: boolean;
  /** `digests --explain`: each template's dependency tree too. */
  explain: boolean;
}

/** A mistake on the command line (exit code 2). */
export class UsageError extends Error {}
/** A failure to report without a stack trace (exit code 1): a configuration, an alias, a server. */
export class UserError extends Error {}

/** Text with every control character (and lone surrogates) escaped, safe to print. */
export function printable(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u001f\u007f-\u009f\u2028\u2029]|[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/g, (char) => {
    const code = char.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}
