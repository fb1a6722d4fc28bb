"""The script ``GET /report`` adds to the build report when the server serves it: it listens
to ``/events`` and shows the build under way (a bar with its progress, each asset marked as it
is made or fails), then reloads the page when the build finishes, so the report follows
``POST /build`` and ``serve --watch`` live. It reconnects if the server restarts."""

SCRIPT = """<script>(function(){"use strict";
var bar=document.createElement("div"),total=null,done=0,failed=0,ws=null;
bar.id="live";bar.hidden=true;bar.setAttribute("role","status");
bar.style.cssText="position:sticky;top:0;z-index:2;padding:6px 10px;margin:0 -16px;background:var(--proc);color:#fff;font-weight:600";
document.body.insertBefore(bar,document.body.firstChild);
function show(state,text){bar.hidden=false;bar.setAttribute("data-state",state);bar.textContent=text;}
function progress(){show("running","building"+(total===null?"":": "+done+" of "+total)+(failed?", "+failed+" failed":"")+"\\u2026");}
function mark(id,status){var el=document.getElementById("a-"+id);if(!el)return;el.setAttribute("data-live",status);
var b=el.querySelector(".badge");if(b){b.textContent=status;b.className="badge st-"+status;}}
function on(e){if(e.event==="hello"){if(e.build&&e.build.status==="running"){var p=e.build.progress||{};
total=p.total===undefined?null:p.total;done=p.done||0;failed=p.failed||0;progress();}}
else if(e.event==="started"){total=null;done=0;failed=0;progress();}
else if(e.event==="plan"){total=(e.entries||0)-(e.fresh||0);progress();}
else if(e.event==="asset"){done++;mark(e.id,e.status);progress();}
else if(e.event==="failed"){failed++;mark(e.id,"failed");progress();}
else if(e.event==="finished"){show(e.status,"build "+e.status+(e.error?": "+e.error:"")+"; reloading");
setTimeout(function(){location.reload();},400);}}
function connect(){ws=new WebSocket((location.protocol==="https:"?"wss:":"ws:")+"//"+location.host+"/events");
ws.onmessage=function(m){try{on(JSON.parse(m.data));}catch(err){}};
ws.onclose=function(){setTimeout(connect,2000);};}
window.assetReportLive={on:on};connect();})();</script>"""
