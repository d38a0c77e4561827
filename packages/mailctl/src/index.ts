// mailctl: the administrator's command line (users, aliases, the queue). See `mailctl help`.
export { commands, type Command, type Context } from './commands.js'
