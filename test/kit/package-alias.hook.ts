/**
 * A module resolution hook that makes one package name resolve to another installed package, e.g.
 * `@nestjs/terminus` to `terminus-11-0` (an npm alias of @nestjs/terminus@11.0.0): the whole process, the
 * package under test included, then runs against that version, as a user's app that installed it would.
 * Registered by package-alias.register.ts; the aliases come from CH_PACKAGE_ALIASES as JSON.
 */
let aliases: Record<string, string> = {};

export function initialize(data: Record<string, string>): void {
  aliases = data;
}

interface ResolveContext {
  conditions: string[];
  parentURL?: string;
}

type NextResolve = (specifier: string, context: ResolveContext) => Promise<{ url: string }>;

export function resolve(specifier: string, context: ResolveContext, nextResolve: NextResolve): Promise<{ url: string }> {
  return nextResolve(aliases[specifier] ?? specifier, context);
}
