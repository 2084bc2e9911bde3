import { Inject, Injectable } from '@nestjs/common';
import { ClientProxy } from '@nestjs/microservices';
import { MonitorConnection } from 'nestjs-connection-health';

/**
 * Publishes notifications through the app's own Nest ClientProxy ('NOTIFICATIONS', the NATS transport, from
 * ClientsModule). The package proves the connection the proxy holds with the nats kind's beat and connects the
 * proxy while it holds none; it never closes it: ClientsModule does at shutdown.
 */
@Injectable()
export class NotificationsPublisher {
  @MonitorConnection({ name: 'notifications', kind: 'microservice', required: false, reconnect: { maxAttempts: Infinity } })
  @Inject('NOTIFICATIONS')
  readonly client!: ClientProxy;

  notify(subject: string, body: string): Promise<void> {
    return new Promise((resolve, reject) => this.client.emit(subject, body).subscribe({ complete: resolve, error: reject }));
  }
}
