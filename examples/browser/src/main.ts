// `pnpm start`: serves the example on http://127.0.0.1:8080/.
import { serveExample } from "./serve";

const server = await serveExample({ port: Number(process.env.PORT ?? 8080) });
console.log(`Kumo browser example: open ${server.url}`);
