import 'reflect-metadata';
import { NestFactory } from '@nestjs/core';
import { AppModule } from './app.module.js';

const app = await NestFactory.create(AppModule);
app.enableShutdownHooks(); // SIGTERM closes every monitored connection before the process exits
await app.listen(Number(process.env.PORT ?? 3000));
console.log(`Sample listening: curl http://localhost:${process.env.PORT ?? 3000}/health`);
