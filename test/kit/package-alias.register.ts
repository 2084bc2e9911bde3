/** `node --import .../package-alias.register.js app.js`: see package-alias.hook.ts. */
import { register } from 'node:module';

register('./package-alias.hook.js', import.meta.url, { data: JSON.parse(process.env.CH_PACKAGE_ALIASES ?? '{}') });
