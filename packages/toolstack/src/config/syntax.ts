/**
 * The xl.cfg file syntax, as Xen's libxlu reads it (tools/libs/util
 * libxlu_cfg_l.l and libxlu_cfg_y.y; documented in xl.cfg(5) "Syntax"):
 *
 *   file      := { statement }
 *   statement := [ IDENT ("=" | "+=") value ] ( NEWLINE | ";" | end of file )
 *   value     := atom | "[" { NEWLINE } [ item { "," { NEWLINE } item } [ "," ] ] { NEWLINE } "]"
 *   item      := (atom | list) { NEWLINE }
 *   atom      := STRING | NUMBER
 *
 * IDENT is `[a-z][_0-9a-z]*`. NUMBER starts with a digit and is read like C
 * `strtol(.., 0)`, as libxlu's xlu_cfg_get_long does: decimal, `0x` hex, and
 * a leading `0` means octal. Strings are in double or single quotes with C
 * escapes. `#` starts a comment that runs to the end of the line. Newlines
 * inside `[ ... ]` continue the list. A key set twice keeps the last value
 * (libxlu searches newest first); `+=` appends to a list.
 *
 * Where libxlu is lax in ways that hide mistakes (it silently drops an
 * unknown escape such as `\q`, and its octal escape reads decimal digits),
 * this parser reports an error instead.
 */
import { type SourcePosition, XlConfigError } from "./errors";

/** A value in an xl.cfg file, with where it was written. */
export type XlValue = XlString | XlNumber | XlList;

export interface XlString {
  readonly kind: "string";
  readonly value: string;
  readonly position: SourcePosition;
}

export interface XlNumber {
  readonly kind: "number";
  /** The number as written (libxlu keeps numbers as text too). */
  readonly text: string;
  readonly value: number;
  readonly position: SourcePosition;
}

export interface XlList {
  readonly kind: "list";
  readonly items: readonly XlValue[];
  readonly position: SourcePosition;
}

/** One `key = value` statement (the last one wins when a key repeats). */
export interface XlSetting {
  readonly key: string;
  readonly value: XlValue;
  /** Where the key was written. */
  readonly position: SourcePosition;
}

/** A parsed xl.cfg file: its settings by key, in the order first seen. */
export interface XlConfigFile {
  readonly source: string;
  readonly settings: ReadonlyMap<string, XlSetting>;
}

const enum Token {
  Identifier,
  Number,
  String,
  Assign,
  Append,
  OpenBracket,
  CloseBracket,
  Comma,
  Semicolon,
  Newline,
  End,
}

const tokenNames: Record<Token, string> = {
  [Token.Identifier]: "a name",
  [Token.Number]: "a number",
  [Token.String]: "a string",
  [Token.Assign]: '"="',
  [Token.Append]: '"+="',
  [Token.OpenBracket]: '"["',
  [Token.CloseBracket]: '"]"',
  [Token.Comma]: '","',
  [Token.Semicolon]: '";"',
  [Token.Newline]: "end of line",
  [Token.End]: "end of file",
};

/** Lists nest (vnuma, for example); bound the depth so a hostile file cannot exhaust the stack. */
const maxListDepth = 32;

class Lexer {
  private offset = 0;
  private line = 1;
  private lineStart = 0;
  token: Token = Token.End;
  /** Identifier name, string contents or number text of the current token. */
  text = "";
  numberValue = 0;
  tokenLine = 1;
  tokenColumn = 1;

  constructor(
    private readonly input: string,
    private readonly source: string,
  ) {}

  /** The current token (a method so that TypeScript does not narrow it across `next()`). */
  kind(): Token {
    return this.token;
  }

  position(): SourcePosition {
    return { line: this.tokenLine, column: this.tokenColumn };
  }

  fail(expected: string, found?: string): never {
    throw new XlConfigError(this.source, this.position(), expected, found);
  }

  describe(): string {
    switch (this.token) {
      case Token.Identifier:
        return `name "${this.text}"`;
      case Token.Number:
        return `number ${this.text}`;
      case Token.String:
        return `string ${JSON.stringify(this.text)}`;
      default:
        return tokenNames[this.token];
    }
  }

  next(): void {
    const input = this.input;
    // Skip blanks and comments; a comment ends at the newline, which is still a token.
    for (;;) {
      const c = input.charCodeAt(this.offset);
      if (c === 0x20 || c === 0x09 || c === 0x0d) this.offset++;
      else if (c === 0x23) {
        while (this.offset < input.length && input.charCodeAt(this.offset) !== 0x0a) this.offset++;
      } else break;
    }
    this.tokenLine = this.line;
    this.tokenColumn = this.offset - this.lineStart + 1;
    if (this.offset >= input.length) {
      this.token = Token.End;
      return;
    }
    const start = this.offset;
    const c = input.charCodeAt(this.offset++);
    switch (c) {
      case 0x0a:
        this.token = Token.Newline;
        this.line++;
        this.lineStart = this.offset;
        return;
      case 0x3d:
        this.token = Token.Assign;
        return;
      case 0x2b:
        if (input.charCodeAt(this.offset) === 0x3d) {
          this.offset++;
          this.token = Token.Append;
          return;
        }
        break;
      case 0x5b:
        this.token = Token.OpenBracket;
        return;
      case 0x5d:
        this.token = Token.CloseBracket;
        return;
      case 0x2c:
        this.token = Token.Comma;
        return;
      case 0x3b:
        this.token = Token.Semicolon;
        return;
      case 0x22:
      case 0x27:
        this.readString(c);
        return;
    }
    if (c >= 0x61 && c <= 0x7a) {
      while (this.offset < input.length && isIdentifierPart(input.charCodeAt(this.offset))) {
        this.offset++;
      }
      this.token = Token.Identifier;
      this.text = input.slice(start, this.offset);
      return;
    }
    if (c >= 0x30 && c <= 0x39) {
      // libxlu's NUMBER token is `[0-9][0-9a-fx]*`; take any word so that `12k` is one mistake.
      while (this.offset < input.length && isIdentifierPart(input.charCodeAt(this.offset))) {
        this.offset++;
      }
      this.token = Token.Number;
      this.text = input.slice(start, this.offset);
      this.numberValue = parseCNumber(this.text);
      if (Number.isNaN(this.numberValue)) {
        this.fail("expected a decimal, 0x hexadecimal or 0 octal integer", `"${this.text}"`);
      }
      return;
    }
    const shown =
      c >= 0x41 && c <= 0x5a
        ? `"${String.fromCharCode(c)}" (names are lower case)`
        : JSON.stringify(String.fromCodePoint(input.codePointAt(start) ?? c));
    this.fail("expected a name, a value or one of = += [ ] , ;", shown);
  }

  private readString(quote: number): void {
    const input = this.input;
    let value = "";
    let chunkStart = this.offset;
    for (;;) {
      if (this.offset >= input.length || input.charCodeAt(this.offset) === 0x0a) {
        this.fail(`expected a closing ${String.fromCharCode(quote)} before the end of the line`);
      }
      const c = input.charCodeAt(this.offset);
      if (c === quote) {
        value += input.slice(chunkStart, this.offset);
        this.offset++;
        break;
      }
      if (c !== 0x5c) {
        this.offset++;
        continue;
      }
      value += input.slice(chunkStart, this.offset);
      const escapeColumn = this.offset - this.lineStart + 1;
      this.offset++;
      const e = input[this.offset++];
      switch (e) {
        case '"':
        case "'":
        case "\\":
          value += e;
          break;
        case "a":
          value += "\x07";
          break;
        case "b":
          value += "\b";
          break;
        case "f":
          value += "\f";
          break;
        case "n":
          value += "\n";
          break;
        case "r":
          value += "\r";
          break;
        case "t":
          value += "\t";
          break;
        case "v":
          value += "\v";
          break;
        case "x": {
          const digits = input.slice(this.offset, this.offset + 2);
          if (!/^[0-9a-fA-F]{2}$/.test(digits)) {
            throw new XlConfigError(
              this.source,
              { line: this.line, column: escapeColumn },
              "expected two hexadecimal digits after \\x",
            );
          }
          value += String.fromCharCode(Number.parseInt(digits, 16));
          this.offset += 2;
          break;
        }
        default: {
          if (e !== undefined && e >= "0" && e <= "7") {
            let digits = e;
            while (digits.length < 3 && /[0-7]/.test(input[this.offset] ?? "")) {
              digits += input[this.offset++];
            }
            value += String.fromCharCode(Number.parseInt(digits, 8) & 0xff);
            break;
          }
          throw new XlConfigError(
            this.source,
            { line: this.line, column: escapeColumn },
            "expected an escape: \\\" \\' \\\\ \\a \\b \\f \\n \\r \\t \\v \\xHH or \\ooo",
            e === undefined || e === "\n" ? "end of line" : `\\${e}`,
          );
        }
      }
      chunkStart = this.offset;
    }
    this.token = Token.String;
    this.text = value;
  }
}

function isIdentifierPart(c: number): boolean {
  return (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;
}

/**
 * Reads an integer the way C `strtol(text, &end, 0)` does for a whole token
 * (libxlu's xlu_cfg_get_long): `0x` hex, leading `0` octal, else decimal.
 * NaN when the token is not entirely a number or exceeds 2^53.
 */
export function parseCNumber(text: string): number {
  let value: number;
  if (/^0[xX][0-9a-fA-F]+$/.test(text)) value = Number.parseInt(text.slice(2), 16);
  else if (/^0[0-7]*$/.test(text))
    value = text.length === 1 ? 0 : Number.parseInt(text.slice(1), 8);
  else if (/^[1-9][0-9]*$/.test(text)) value = Number.parseInt(text, 10);
  else return Number.NaN;
  return Number.isSafeInteger(value) ? value : Number.NaN;
}

/**
 * Parses the text of an xl.cfg file. `source` names the file in error
 * messages. Throws `XlConfigError` (and nothing else) for any malformed input.
 */
export function parseXlConfigText(text: string, source = "<config>"): XlConfigFile {
  const lexer = new Lexer(text, source);
  const settings = new Map<string, XlSetting>();
  lexer.next();
  for (;;) {
    if (lexer.kind() === Token.End) break;
    if (lexer.kind() === Token.Newline || lexer.kind() === Token.Semicolon) {
      lexer.next();
      continue;
    }
    if (lexer.kind() !== Token.Identifier) {
      lexer.fail("expected a setting name at the start of a statement", lexer.describe());
    }
    const key = lexer.text;
    const position = lexer.position();
    lexer.next();
    const operator = lexer.kind();
    if (operator !== Token.Assign && operator !== Token.Append) {
      lexer.fail(`expected "=" or "+=" after "${key}"`, lexer.describe());
    }
    lexer.next();
    let value = parseValue(lexer, key, 0);
    if (operator === Token.Append) {
      const previous = settings.get(key)?.value;
      if (previous !== undefined) {
        // libxlu's xlu__cfg_set_add: `+=` extends a list; both sides must be lists.
        if (previous.kind !== "list" || value.kind !== "list") {
          throw new XlConfigError(source, position, `"+=" needs a list on both sides for "${key}"`);
        }
        value = { kind: "list", items: [...previous.items, ...value.items], position };
      }
    }
    if (lexer.kind() !== Token.Newline && lexer.kind() !== Token.Semicolon) {
      if (lexer.kind() !== Token.End) {
        lexer.fail(`expected end of line or ";" after the value of "${key}"`, lexer.describe());
      }
    }
    settings.delete(key);
    settings.set(key, { key, value, position });
  }
  return { source, settings };
}

function parseValue(lexer: Lexer, key: string, depth: number): XlValue {
  const position = lexer.position();
  switch (lexer.kind()) {
    case Token.String: {
      const value: XlString = { kind: "string", value: lexer.text, position };
      lexer.next();
      return value;
    }
    case Token.Number: {
      const value: XlNumber = {
        kind: "number",
        text: lexer.text,
        value: lexer.numberValue,
        position,
      };
      lexer.next();
      return value;
    }
    case Token.OpenBracket:
      return parseList(lexer, key, depth + 1);
    default:
      return lexer.fail(
        `expected a value for "${key}" (a quoted string, a number or a [ list ])`,
        lexer.describe(),
      );
  }
}

function skipNewlines(lexer: Lexer): void {
  while (lexer.kind() === Token.Newline) lexer.next();
}

function parseList(lexer: Lexer, key: string, depth: number): XlList {
  const position = lexer.position();
  if (depth > maxListDepth) lexer.fail(`expected at most ${maxListDepth} nested lists`);
  lexer.next();
  const items: XlValue[] = [];
  skipNewlines(lexer);
  while (lexer.kind() !== Token.CloseBracket) {
    if (lexer.kind() === Token.End) {
      lexer.fail(`expected "]" to close the list of "${key}" opened at line ${position.line}`);
    }
    items.push(parseValue(lexer, key, depth));
    skipNewlines(lexer);
    if (lexer.kind() === Token.Comma) {
      lexer.next();
      skipNewlines(lexer);
    } else if (lexer.kind() === Token.End) {
      lexer.fail(`expected "]" to close the list of "${key}" opened at line ${position.line}`);
    } else if (lexer.kind() !== Token.CloseBracket) {
      lexer.fail(`expected "," or "]" in the list of "${key}"`, lexer.describe());
    }
  }
  lexer.next();
  return { kind: "list", items, position };
}
