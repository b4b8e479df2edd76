/** A position in a configuration file: 1-based line and column (columns count UTF-16 units). */
export interface SourcePosition {
  readonly line: number;
  readonly column: number;
}

/**
 * A user's mistake in an xl.cfg file: the file, where, what was found and
 * what was expected. The message reads like a compiler's:
 * `guest.cfg:3:9: expected a value after "=", found end of line`.
 */
export class XlConfigError extends Error {
  override readonly name = "XlConfigError";
  readonly source: string;
  readonly line: number;
  readonly column: number;
  /** What the parser or validator wanted at that place. */
  readonly expected: string;

  constructor(source: string, position: SourcePosition, expected: string, found?: string) {
    const detail = found === undefined ? expected : `${expected}, found ${found}`;
    super(`${source}:${position.line}:${position.column}: ${detail}`);
    this.source = source;
    this.line = position.line;
    this.column = position.column;
    this.expected = expected;
  }
}
