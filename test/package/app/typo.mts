// Must NOT compile: a misspelt option of a built-in backend.
import { configureCaches } from 'cachegrain';

void configureCaches({ default: { backend: 'locmem', options: { maxEntires: 5 } } });
