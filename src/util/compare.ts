/**
 * Orders strings by UTF-16 code unit, as kubectl orders names (Go compares
 * bytes). Not localeCompare: its first call loads ICU's collator, a few
 * milliseconds of every `apiary get`, and its order moves with the user's
 * locale; for names (DNS-1123: lowercase letters, digits, '-' and '.') the
 * two agree in the root locale anyway.
 */
export function byCodeUnit(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
