/* A fake FMOD Studio scripting environment for tests/test_engine_fmod.py.
 *
 *   node tests/fmod_harness.js plan.json
 *
 * plan.json: {script, assetsDir, buses: ["bus:/SFX", ...], steps: [{via, location, ...}]}
 *   via "menu":    choose the registered menu item; studio.system.getText answers `location`
 *   via "global":  call assetbuildImport(location) from the "console"
 *   via "require": load the script again through studio.system.require (module.exports)
 *   via "load":    load the script file again as FMOD does on Scripts > Reload
 *   via "replace": copy files over others ({files: {dest: source}}): the pack changes
 *
 * The model keeps what a script can see of an FMOD project: event folders, events with group
 * tracks, instruments, marker tracks and loop regions, banks, buses and audio assets (files are
 * really copied into assetsDir). Objects refuse properties FMOD does not have, and the calls
 * check their arguments, so a script using a wrong name fails here. Prints the project as JSON.
 */
"use strict";

const fs = require("fs");
const path = require("path");
const vm = require("vm");

const plan = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
const assetsDir = path.resolve(plan.assetsDir);
fs.mkdirSync(assetsDir, { recursive: true });

let nextId = 1;
const registry = new Map(); // id -> object
const calls = { menu: [], messages: [], prompts: [], logs: [] };

function fail(message) {
    throw new Error("fake FMOD: " + message);
}

const TYPES = {
    Event: ["Event"],
    EventFolder: ["EventFolder", "Folder"],
    BankFolder: ["BankFolder", "Folder"],
    AssetFolder: ["AssetFolder", "Folder"],
    Bank: ["Bank"],
    MixerBus: ["MixerGroup", "MixerBus"],
    GroupTrack: ["GroupTrack", "AudioTrack"],
    MarkerTrack: ["MarkerTrack"],
    Timeline: ["Timeline", "Parameter"],
    MixerGroup: ["EventMixerGroup", "MixerGroup"],
    MixerInput: ["MixerInput"],
    SingleSound: ["SingleSound", "Sound"],
    MultiSound: ["MultiSound", "Sound"],
    ProgrammerSound: ["ProgrammerSound", "Sound"],
    LoopRegion: ["LoopRegion", "Marker"],
    AudioFile: ["AudioFile", "Asset"],
};

/* A managed object: fixed state keys; `writable` lists what a script may assign. */
function managed(entity, state, writable, setters) {
    const target = Object.assign({
        id: "{" + String(nextId++).padStart(8, "0") + "-0000-0000-0000-000000000000}",
        entity,
        isOfType: (t) => TYPES[entity].includes(t),
        isOfExactType: (t) => t === entity,
        isValid: true,
    }, state);
    const proxy = new Proxy(target, {
        get(obj, key) {
            if (typeof key === "symbol" || key in obj || key === "toJSON" || key === "then") {
                return obj[key];
            }
            fail(entity + " has no property " + String(key));
        },
        set(obj, key, value) {
            if (!writable.includes(key)) {
                fail("cannot set " + entity + "." + String(key));
            }
            if (setters && setters[key]) {
                setters[key](obj, value);
            } else {
                obj[key] = value;
            }
            return true;
        },
    });
    registry.set(target.id, proxy);
    target.self = proxy;
    return proxy;
}

function relation(owner, list) {
    return {
        add(item) {
            if (!item || !registry.has(item.id)) {
                fail("relationship add of a non-object");
            }
            if (!list.includes(item)) {
                list.push(item);
            }
            return true;
        },
        remove(item) {
            const at = list.indexOf(item);
            if (at >= 0) {
                list.splice(at, 1);
            }
            return at >= 0;
        },
        get destinations() {
            return list.slice();
        },
    };
}

function detach(list, item) {
    const at = list.indexOf(item);
    if (at >= 0) {
        list.splice(at, 1);
    }
}

// --- folders, banks, buses ------------------------------------------------------------------

function makeFolder(entity, name, parent) {
    const items = [];
    const folder = managed(entity, { name, folder: null, items }, ["name", "folder"], {
        folder(obj, value) {
            if (obj.folder) {
                detach(obj.folder.items, obj.self);
            }
            obj.folder = value;
            if (value) {
                value.items.push(obj.self);
            }
        },
    });
    if (parent) {
        folder.folder = parent;
    }
    return folder;
}

const masterEventFolder = makeFolder("EventFolder", "", null);
const masterBankFolder = makeFolder("BankFolder", "", null);
const masterAssetFolder = managed("AssetFolder", {
    getAsset(p) {
        return assets.find((a) => a.getAssetPath() === p) || undefined;
    },
}, []);
const buses = (plan.buses || []).map((p) => managed("MixerBus", { name: p.split("/").pop(), busPath: p }, []));

function folderPath(item) {
    const names = [];
    for (let f = item; f && f !== masterEventFolder; f = f.folder) {
        names.unshift(f.name);
    }
    return "event:/" + names.join("/");
}

// --- assets ----------------------------------------------------------------------------------

const assets = [];

function wavLength(file) {
    const data = fs.readFileSync(file);
    if (data.toString("ascii", 0, 4) !== "RIFF" || data.toString("ascii", 8, 12) !== "WAVE") {
        return 1.0;
    }
    let pos = 12, rate = 0, blockAlign = 0;
    while (pos + 8 <= data.length) {
        const id = data.toString("ascii", pos, pos + 4);
        const size = data.readUInt32LE(pos + 4);
        if (id === "fmt ") {
            rate = data.readUInt32LE(pos + 12);
            blockAlign = data.readUInt16LE(pos + 20);
        } else if (id === "data" && rate && blockAlign) {
            return size / blockAlign / rate;
        }
        pos += 8 + size + (size % 2);
    }
    return 1.0;
}

function isAbsolute(p) {
    return p.startsWith("/") || /^[A-Za-z]:\//.test(p);
}

function importAudioFile(filePath) {
    if (typeof filePath !== "string" || !isAbsolute(filePath)) {
        fail("importAudioFile needs an absolute path, got " + filePath);
    }
    if (!fs.existsSync(filePath)) {
        return null;
    }
    const name = path.basename(filePath);
    if (fs.existsSync(path.join(assetsDir, name))) {
        fail("importAudioFile: an asset " + name + " is already at the assets root");
    }
    fs.copyFileSync(filePath, path.join(assetsDir, name));
    const state = { assetPath: name, source: filePath };
    const asset = managed("AudioFile", {
        length: wavLength(filePath),
        source: filePath,
        getAssetPath: () => state.assetPath,
        getAbsoluteAssetPath: () => path.join(assetsDir, state.assetPath).split(path.sep).join("/"),
        setAssetPath(p) {
            if (assets.some((a) => a.getAssetPath() === p)) {
                return false;
            }
            const dest = path.join(assetsDir, p);
            fs.mkdirSync(path.dirname(dest), { recursive: true });
            fs.renameSync(path.join(assetsDir, state.assetPath), dest);
            state.assetPath = p;
            return true;
        },
    }, []);
    assets.push(asset);
    return asset;
}

// --- events ----------------------------------------------------------------------------------

function makeSound(type, event, track) {
    const sounds = [];
    const state = { audioTrack: track, start: 0, length: 0, looping: false, isAsync: false,
                    audioFile: null, owner: null, name: "", volume: 0 };
    if (type === "MultiSound") {
        state.sounds = sounds;
        state.relationships = { sounds: relation(null, sounds) };
    }
    return managed(type, state, ["start", "length", "looping", "isAsync", "audioFile", "owner", "name", "volume"], {
        audioFile(obj, value) {
            if (type !== "SingleSound") {
                fail(type + ".audioFile");
            }
            if (value && !value.isOfType("AudioFile")) {
                fail("audioFile must be an AudioFile");
            }
            obj.audioFile = value;
        },
        owner(obj, value) {
            if (!value || !value.isOfExactType("MultiSound")) {
                fail("owner must be a MultiSound");
            }
            if (obj.owner) {
                detach(obj.owner.sounds, obj.self);
            }
            obj.owner = value;
            value.sounds.push(obj.self);
        },
        length(obj, value) {
            if (typeof value !== "number" || !(value > 0)) {
                fail("instrument length must be a positive number, got " + value);
            }
            obj.length = value;
        },
        looping(obj, value) {
            if (typeof value !== "boolean") {
                fail("looping must be a boolean");
            }
            obj.looping = value;
        },
    });
}

function makeEvent() {
    const groupTracks = [], markerTracks = [], banks = [];
    const timeline = managed("Timeline", { name: "Timeline" }, []);
    let event = null;
    const state = {
        name: "",
        folder: null,
        note: "",
        groupTracks,
        markerTracks,
        timeline,
        masterTrack: null,
        mixerInput: managed("MixerInput", { output: null }, ["output"], {
            output(obj, value) {
                if (!value || !value.isOfType("MixerGroup")) {
                    fail("mixerInput.output must be a bus");
                }
                obj.output = value;
            },
        }),
        relationships: { banks: relation(null, banks) },
        banks,
        getPath: () => folderPath(event),
        addGroupTrack(name) {
            const modules = [];
            const track = managed("GroupTrack", {
                event, modules,
                mixerGroup: managed("MixerGroup", { name: name || "Audio " + (groupTracks.length + 1) }, ["name"]),
                addSound(parameter, soundType, start, length) {
                    if (parameter !== timeline) {
                        fail("addSound: the parameter sheet must be the event's timeline");
                    }
                    if (!["SingleSound", "MultiSound", "ProgrammerSound"].includes(soundType)) {
                        fail("addSound: bad sound type " + soundType);
                    }
                    if (typeof start !== "number" || typeof length !== "number" || !(length > 0)) {
                        fail("addSound: start and length must be numbers");
                    }
                    const sound = makeSound(soundType, event, track);
                    sound.start = start;
                    sound.length = length;
                    modules.push(sound);
                    return sound;
                },
            }, []);
            groupTracks.push(track);
            return track;
        },
        addMarkerTrack() {
            const markers = [];
            const track = managed("MarkerTrack", {
                markers,
                addRegion(position, length, name, loopMode) {
                    if (typeof position !== "number" || typeof length !== "number" || !(length > 0)) {
                        fail("addRegion: position and length must be numbers");
                    }
                    if (loopMode !== undefined && loopMode !== 1) {
                        fail("addRegion: loop mode " + loopMode);
                    }
                    const region = managed("LoopRegion", { position, length, name, loopMode: 1, markerTrack: track },
                                           ["position", "length", "name"]);
                    markers.push(region);
                    return region;
                },
            }, []);
            markerTracks.push(track);
            return track;
        },
    };
    event = managed("Event", state, ["name", "folder", "note"], {
        folder(obj, value) {
            if (!value || !value.isOfType("EventFolder")) {
                fail("Event.folder must be an event folder");
            }
            if (obj.folder) {
                detach(obj.folder.items, obj.self);
            }
            obj.folder = value;
            value.items.push(obj.self);
        },
        note(obj, value) {
            if (typeof value !== "string") {
                fail("note must be a string");
            }
            obj.note = value;
        },
    });
    return event;
}

// --- project ---------------------------------------------------------------------------------

function lookup(idOrPath) {
    if (typeof idOrPath !== "string") {
        fail("lookup needs a string");
    }
    if (registry.has(idOrPath)) {
        return registry.get(idOrPath);
    }
    const m = /^([a-z]+):\/(.*)$/.exec(idOrPath);
    if (!m) {
        fail("lookup: not a path or GUID: " + idOrPath);
    }
    const [, type, rest] = m;
    if (type === "event") {
        let current = masterEventFolder;
        for (const name of rest.split("/")) {
            if (!current || !current.isOfType("EventFolder")) {
                return undefined;
            }
            current = current.items.find((item) => item.name === name);
        }
        return current || undefined;
    }
    if (type === "bank") {
        return allOf("Bank").find((b) => b.name === rest) || undefined;
    }
    if (type === "bus") {
        return buses.find((b) => b.busPath === idOrPath) || undefined;
    }
    if (type === "asset") {
        return assets.find((a) => a.getAssetPath() === rest) || undefined;
    }
    fail("lookup: unsupported path type " + type);
}

function allOf(entity) {
    return Array.from(registry.values()).filter((o) => o.entity === entity);
}

function create(entity) {
    if (entity === "Event") {
        return makeEvent();
    }
    if (entity === "EventFolder") {
        return makeFolder("EventFolder", "New Folder", null);
    }
    if (entity === "Bank") {
        return managed("Bank", { name: "New Bank", folder: null }, ["name", "folder"]);
    }
    if (entity === "SingleSound") {
        return makeSound("SingleSound", null, null);
    }
    fail("create: unsupported entity " + entity);
}

function deleteObject(obj) {
    if (!obj || !registry.has(obj.id)) {
        fail("deleteObject of a non-object");
    }
    registry.delete(obj.id);
    for (const other of registry.values()) {
        for (const key of ["modules", "sounds", "markers", "items"]) {
            const list = Object.prototype.hasOwnProperty.call(Object(other), key) ? other[key] : null;
            if (Array.isArray(list)) {
                detach(list, obj);
            }
        }
    }
    return true;
}

function makeFile(filePath) {
    let openMode = null;
    return {
        exists: () => fs.existsSync(filePath) && fs.statSync(filePath).isFile(),
        open(mode) {
            if (mode !== 1) {
                fail("only ReadOnly opening is expected");
            }
            openMode = mode;
            return fs.existsSync(filePath);
        },
        size: () => fs.statSync(filePath).size,
        readText(maxSize) {
            if (openMode !== 1) {
                fail("readText on a file not opened for reading");
            }
            if (typeof maxSize !== "number") {
                fail("readText needs a size");
            }
            return fs.readFileSync(filePath).subarray(0, maxSize).toString("utf8");
        },
        close() {
            openMode = null;
            return true;
        },
        copy(dest) {
            if (!isAbsolute(dest)) {
                fail("File.copy needs an absolute path");
            }
            if (fs.existsSync(dest) || !fs.existsSync(filePath)) {
                return false;  // like QFile::copy, never overwrites
            }
            fs.mkdirSync(path.dirname(dest), { recursive: true });
            fs.copyFileSync(filePath, dest);
            return true;
        },
        remove() {
            if (!fs.existsSync(filePath)) {
                return false;
            }
            fs.unlinkSync(filePath);
            return true;
        },
    };
}

function makeStudio() {
    return {
        project: {
            create, lookup, importAudioFile, deleteObject,
            filePath: path.join(path.dirname(assetsDir), "Game.fspro").split(path.sep).join("/"),
            regionLoopMode: { None: 0, Looping: 1, Magnet: 2 },
            workspace: { masterEventFolder, masterBankFolder, masterAssetFolder },
            model: {},
        },
        system: {
            openMode: { ReadOnly: 1, WriteOnly: 2, ReadWrite: 3, Append: 4, Truncate: 8 },
            getFile: (p) => {
                if (typeof p !== "string") {
                    fail("getFile needs a string");
                }
                return makeFile(p);
            },
            getText(message, defaultText) {
                calls.prompts.push({ message, defaultText });
                return currentLocation;
            },
            message(text) {
                calls.messages.push(String(text));
            },
            print(text) {
                calls.logs.push(String(text));
            },
            require(fileName) {
                return requireScript(fileName);
            },
        },
        menu: {
            addMenuItem(item) {
                if (!item || typeof item.name !== "string" || typeof item.execute !== "function") {
                    fail("addMenuItem needs {name, execute}");
                }
                calls.menu.push(item);
            },
        },
    };
}

/* studio.system.require: runs the file with a `module` whose exports it returns. */
function requireScript(fileName) {
    const module = { exports: {} };
    const wrapper = vm.runInContext("(function (module) {\n" + fs.readFileSync(fileName, "utf8") + "\n})",
                                    context, { filename: fileName });
    wrapper(module);
    return module.exports;
}

// --- run ---------------------------------------------------------------------------------

let currentLocation = null;
const sandbox = { console: { log: (...a) => calls.logs.push(a.join(" ")) } };
sandbox.studio = makeStudio();
const context = vm.createContext(sandbox);
const code = fs.readFileSync(plan.script, "utf8");
vm.runInContext(code, context, { filename: plan.script });

const reports = [];
for (const step of plan.steps) {
    currentLocation = step.location;
    if (step.via === "menu") {
        const item = calls.menu.find((m) => m.name === step.menu);
        if (!item) {
            fail("no menu item " + step.menu);
        }
        item.execute();
        reports.push({ via: "menu", message: calls.messages[calls.messages.length - 1] });
    } else if (step.via === "global") {
        reports.push({ via: "global", report: JSON.parse(JSON.stringify(context.assetbuildImport(step.location))) });
    } else if (step.via === "require") {
        const exported = context.studio.system.require(plan.script);
        reports.push({ via: "require", exports: Object.keys(exported).sort(),
                       report: JSON.parse(JSON.stringify(exported.importPack(step.location))) });
    } else if (step.via === "replace") {
        for (const [dest, src] of Object.entries(step.files)) {
            fs.copyFileSync(src, dest);
        }
        reports.push({ via: "replace" });
    } else if (step.via === "load") {
        vm.runInContext(code, context, { filename: plan.script });
        reports.push({ via: "load" });
    } else {
        fail("unknown step " + step.via);
    }
}

function describeSound(sound) {
    const out = {
        type: sound.entity, start: sound.start, length: sound.length, looping: sound.looping,
        isAsync: sound.isAsync,
    };
    if (sound.entity === "SingleSound") {
        out.audio = sound.audioFile ? sound.audioFile.getAssetPath() : null;
    }
    if (sound.entity === "MultiSound") {
        out.playlist = sound.sounds.map((s) => (s.audioFile ? s.audioFile.getAssetPath() : null));
    }
    return out;
}

const events = allOf("Event").map((event) => ({
    path: folderPath(event),
    note: event.note,
    banks: event.banks.map((b) => b.name),
    bus: event.mixerInput.output ? event.mixerInput.output.busPath : null,
    tracks: event.groupTracks.map((t) => ({
        name: t.mixerGroup.name,
        instruments: t.modules.map(describeSound),
    })),
    regions: [].concat(...event.markerTracks.map((t) => t.markers.map((m) => ({
        name: m.name, position: m.position, length: m.length, loopMode: m.loopMode,
    })))),
}));

const output = {
    menu: calls.menu.map((m) => m.name),
    prompts: calls.prompts,
    messages: calls.messages,
    reports,
    events: events.sort((a, b) => (a.path < b.path ? -1 : 1)),
    folders: allOf("EventFolder").filter((f) => f !== masterEventFolder).map(folderPath).sort(),
    banks: allOf("Bank").map((b) => b.name).sort(),
    assets: assets.map((a) => ({ assetPath: a.getAssetPath(), source: a.source,
                                 file: a.getAbsoluteAssetPath(), length: a.length })),
    orphanSounds: allOf("SingleSound").filter((s) => !s.audioTrack && !s.owner).length,
};
process.stdout.write(JSON.stringify(output, null, 1) + "\n");
