import { Controller, Get } from '@nestjs/common';
import { HealthCheck, HealthCheckService } from '@nestjs/terminus';
import { ConnectionHealthIndicator } from 'nestjs-connection-health';

@Controller('health')
export class HealthController {
  constructor(
    private readonly health: HealthCheckService,
    private readonly connections: ConnectionHealthIndicator,
  ) {}

  /** Reads the monitors' snapshots: no query per probe, fast while the database hangs. */
  @Get()
  @HealthCheck()
  check() {
    return this.health.check([() => this.connections.isHealthy()]);
  }
}
