/**
 * Maps a field path (as zod reports it) to a line and column in the YAML
 * source, so every error points at the place to edit.
 */
import { isMap, isPair, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export interface Position {
  line: number;
  col: number;
}

function positionOf(node: { range?: readonly number[] | null } | null | undefined, lc: LineCounter): Position | undefined {
  const offset = node?.range?.[0];
  if (offset === undefined) return undefined;
  const { line, col } = lc.linePos(offset);
  return { line, col };
}

function keyText(key: unknown): string | undefined {
  if (isScalar(key)) return String(key.value);
  return undefined;
}

/**
 * Where `path` is in the document. With `atKey`, the position of the last
 * segment's key (for unknown fields); otherwise of its value. A path that
 * does not exist (a missing field) resolves to the key of its nearest parent.
 */
export function locate(
  doc: Document,
  path: readonly PropertyKey[],
  lc: LineCounter,
  options: { atKey?: boolean } = {},
): Position {
  const fallback = positionOf(doc.contents as Node | null, lc) ?? { line: 1, col: 1 };
  let node: unknown = doc.contents;
  let parentKeyPos: Position | undefined;
  for (let i = 0; i < path.length; i++) {
    const segment = path[i];
    const last = i === path.length - 1;
    if (isMap(node)) {
      const pair = node.items.find((p) => isPair(p) && keyText(p.key) === String(segment));
      if (pair === undefined) return parentKeyPos ?? positionOf(node, lc) ?? fallback;
      const keyPos = positionOf(pair.key as Node, lc);
      if (last && options.atKey === true) return keyPos ?? fallback;
      parentKeyPos = keyPos ?? parentKeyPos;
      node = pair.value;
      if (node === null || node === undefined) return parentKeyPos ?? fallback;
    } else if (isSeq(node) && typeof segment === 'number') {
      const item = node.items[segment];
      if (item === undefined) return parentKeyPos ?? positionOf(node, lc) ?? fallback;
      parentKeyPos = positionOf(item as Node, lc) ?? parentKeyPos;
      node = item;
    } else {
      return parentKeyPos ?? fallback;
    }
  }
  return positionOf(node as Node, lc) ?? parentKeyPos ?? fallback;
}

