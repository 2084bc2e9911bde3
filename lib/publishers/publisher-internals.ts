import type { LoggerService } from '@nestjs/common';
import type { OptionChecker } from '../core/option-checker.js';
import type { SecretScrubber } from '../core/secret-scrubber.js';

/** What the module hands its own publishers at init: the package logger, and the scrubber to register their secrets with. */
export interface PublisherEnvironment {
  readonly logger: LoggerService;
  readonly scrubber: SecretScrubber;
}

/** Checks a built-in publisher's options at bootstrap, with the module's other options (not part of the public interface). */
export const CHECK_PUBLISHER = Symbol('connection-health:check-publisher');
/** Gives a built-in publisher the package logger, and has it register its secrets with the scrubber. */
export const ATTACH_PUBLISHER = Symbol('connection-health:attach-publisher');

export interface PublisherInternals {
  [CHECK_PUBLISHER]?(check: OptionChecker): void;
  [ATTACH_PUBLISHER]?(environment: PublisherEnvironment): void;
}
