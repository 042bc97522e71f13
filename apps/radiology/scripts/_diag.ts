import { loadImage, SessionPool } from "labelgraph";
import { prepareColin27 } from "../lib/colin27.js";
import { Segmentation } from "../lib/segmentation.js";
const files = await prepareColin27("/work/main/test/fixtures/.cache", "/tmp/diagdata");
const task = new Segmentation({ path: process.argv[2]!, labels: ["brain"], description: "x", targetSpacing: 2 });
const pool = new SessionPool({});
const r = await task.run({ imagePath: files.image, params: {} }, { pool });
const p = await loadImage(r.labelPath!); const t = await loadImage(files.label);
let tp=0, fp=0, fn=0;
for (let i=0;i<p.data.length;i++){const a=p.data[i]!>0, b=t.data[i]!>0; if(a&&b)tp++; else if(a)fp++; else if(b)fn++;}
console.log({tp, fp, fn, dice: 2*tp/(2*tp+fp+fn)});
// FP by z slab
const [nx,ny,nz]=p.shape as number[];
const fpz=new Array(10).fill(0), fnz=new Array(10).fill(0);
for(let z=0;z<nz!;z++)for(let y=0;y<ny!;y++)for(let x=0;x<nx!;x++){const i=(z*ny!+y)*nx!+x;const a=p.data[i]!>0,b=t.data[i]!>0;const k=Math.floor(z*10/nz!);if(a&&!b)fpz[k]++;if(b&&!a)fnz[k]++;}
console.log("fp by z", fpz, "fn by z", fnz);
await pool.close({force:true});
