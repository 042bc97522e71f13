import type { Info } from "../datastore/types.js";

/** Prisma hands back JsonValue; the columns we store are always objects or number arrays. */
export const asInfo = (v: unknown): Info => (v && typeof v === "object" && !Array.isArray(v) ? (v as Info) : {});
export const asNumbers = (v: unknown): number[] => (Array.isArray(v) ? v.map(Number) : []);

/** True when the error is a unique-constraint violation (Prisma P2002), whatever the provider. */
export function isUniqueViolation(err: unknown): boolean {
  return typeof err === "object" && err !== null && (err as { code?: string }).code === "P2002";
}
