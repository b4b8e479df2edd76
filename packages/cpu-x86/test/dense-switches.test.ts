/**
 * The interpreter's opcode dispatch stays a jump table. V8 compiles a
 * `switch` to one only when every case is an integer literal, there are at
 * least 6 of them and the table they span (highest less lowest, plus one)
 * has fewer entries than three times their number (its flags
 * --switch-table-min-cases=6 and --switch-table-spread-threshold=3, as
 * Node 20's V8 applies them); any other switch tests its cases one by one. The unoptimized tiers, which run the interpreter until V8 has
 * optimized it (the first boot of a process) and after each deoptimization,
 * then call a comparison builtin per case passed: a hundred for an opcode
 * near the end. One more two-byte case in `execute` would silently bring
 * that back, so this reads cpu.ts and checks the rule.
 */
import { readFileSync } from "node:fs";
import ts from "typescript";
import { describe, expect, it } from "vitest";

/** The methods that dispatch on the decoded opcode, per instruction. */
const DISPATCH = ["execute", "executeRare", "executeTwoByte", "stringInstruction"];

interface SwitchShape {
  method: string;
  line: number;
  literals: number[];
  others: number;
}

function switchesOf(path: string): SwitchShape[] {
  const source = ts.createSourceFile(
    path,
    readFileSync(path, "utf8"),
    ts.ScriptTarget.Latest,
    true,
  );
  const found: SwitchShape[] = [];
  const visit = (node: ts.Node, method: string): void => {
    let inside = method;
    if (ts.isMethodDeclaration(node) && ts.isIdentifier(node.name)) inside = node.name.text;
    if (ts.isSwitchStatement(node)) {
      const shape: SwitchShape = {
        method: inside,
        line: source.getLineAndCharacterOfPosition(node.getStart()).line + 1,
        literals: [],
        others: 0,
      };
      for (const clause of node.caseBlock.clauses) {
        if (!ts.isCaseClause(clause)) continue;
        if (ts.isNumericLiteral(clause.expression))
          shape.literals.push(Number(clause.expression.text));
        else shape.others++;
      }
      found.push(shape);
    }
    ts.forEachChild(node, (child) => visit(child, inside));
  };
  visit(source, "");
  return found;
}

const jumpTable = (shape: SwitchShape): boolean =>
  shape.others === 0 &&
  shape.literals.length >= 6 &&
  Math.max(...shape.literals) - Math.min(...shape.literals) + 1 < 3 * shape.literals.length;

describe("opcode dispatch", () => {
  const switches = switchesOf(new URL("../src/cpu.ts", import.meta.url).pathname);

  it.each(DISPATCH)("every switch in %s is dense enough for V8's jump table", (method) => {
    const own = switches.filter((shape) => shape.method === method);
    expect(own.length).toBeGreaterThan(0);
    for (const shape of own) {
      const range = `${shape.literals.length} literal cases from ${Math.min(...shape.literals)} to ${Math.max(...shape.literals)}, ${shape.others} others`;
      expect(jumpTable(shape), `cpu.ts:${shape.line} (${method}): ${range}`).toBe(true);
    }
  });

  it("tells a sparse switch from a dense one", () => {
    // Six cases spanning 16 entries: a table (18 entries would not be).
    const dense = {
      method: "",
      line: 0,
      literals: [0x40, 0x41, 0x42, 0x44, 0x48, 0x4f],
      others: 0,
    };
    expect(jumpTable(dense)).toBe(true);
    expect(jumpTable({ ...dense, literals: [0x40, 0x41, 0x42, 0x44, 0x48, 0x51] })).toBe(false);
    expect(jumpTable({ ...dense, literals: [...dense.literals, 0x180] })).toBe(false);
    expect(jumpTable({ ...dense, others: 1 })).toBe(false);
    expect(jumpTable({ ...dense, literals: dense.literals.slice(0, 5) })).toBe(false);
  });
});
