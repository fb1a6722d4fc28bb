/* -------------------------------------------------------------------------------------------
   assetbuild: import an assetbuild pack into FMOD Studio
   -------------------------------------------------------------------------------------------
   Written by `assetbuild export fmod` as <pack>/fmod/import_assetpack.js, next to
   assetbuild_events.csv. It creates (or updates) one event per row of that CSV:

     - event folders event:/<project>/<Kind>/, the event, and a group track named "assetbuild";
     - a single instrument (one file), a multi instrument (the takes of a round-robin group)
       or a programmer instrument (dialogue played from audio tables), as long as the audio;
     - looping assets: the instrument loops and a timeline loop region covers the loop points;
     - new events are assigned to the bank named in the "bank" column (created when missing)
       and routed to the "bus" column's bus when the project has it.

   Running it again updates the same events (found by path) instead of adding new ones, and
   refreshes the audio files it imported before (kept under Assets/<bank>/ in the FMOD project).

   Use it from FMOD Studio (2.02 or later):
     1. Copy this file into your FMOD project's Scripts folder (or your user scripts folder)
        and choose Scripts > Reload.
     2. Choose Scripts > assetbuild > Import assetpack, and give the pack's fmod folder (or the
        pack folder, or the CSV itself).
     3. Save the project.
   From the console:        assetbuildImport("C:/game/build/audio/fmod");
   Headless (fmodstudiocl -script wrapper.js Game.fspro), with wrapper.js:
       var assetbuild = studio.system.require("C:/game/build/audio/fmod/import_assetpack.js");
       assetbuild.importPack("C:/game/build/audio/fmod");
       studio.project.save();

   Plain ES5: FMOD Studio's script engine predates let, const and arrow functions.
   ------------------------------------------------------------------------------------------- */

(function () {
    var globalObject = (function () { return this; })();
    var MENU_NAME = "assetbuild\\Import assetpack";
    var EVENTS_CSV = "assetbuild_events.csv";
    var TRACK_NAME = "assetbuild";
    var LOOP_NAME = "assetbuild loop";
    var INSTRUMENTS = { single: "SingleSound", multi: "MultiSound", programmer: "ProgrammerSound" };
    var lastFolder = "";

    // --- CSV and paths ------------------------------------------------------------------------

    /* RFC 4180: quoted fields may hold commas, quotes ("") and line breaks. */
    function parseCsv(text) {
        var rows = [], row = [], field = "", quoted = false, i = 0, c;
        if (text.charCodeAt(0) === 0xFEFF) {
            i = 1;
        }
        for (; i < text.length; i++) {
            c = text.charAt(i);
            if (quoted) {
                if (c === "\"") {
                    if (text.charAt(i + 1) === "\"") {
                        field += "\"";
                        i++;
                    } else {
                        quoted = false;
                    }
                } else {
                    field += c;
                }
            } else if (c === "\"") {
                quoted = true;
            } else if (c === ",") {
                row.push(field);
                field = "";
            } else if (c === "\r" || c === "\n") {
                if (c === "\r" && text.charAt(i + 1) === "\n") {
                    i++;
                }
                row.push(field);
                rows.push(row);
                row = [];
                field = "";
            } else {
                field += c;
            }
        }
        if (field !== "" || row.length) {
            row.push(field);
            rows.push(row);
        }
        return rows;
    }

    function readRecords(text) {
        var rows = parseCsv(text), header = rows[0] || [], records = [], i, j, record;
        for (i = 1; i < rows.length; i++) {
            if (rows[i].length === 1 && rows[i][0] === "") {
                continue;
            }
            record = {};
            for (j = 0; j < header.length; j++) {
                record[header[j]] = rows[i][j] === undefined ? "" : rows[i][j];
            }
            records.push(record);
        }
        return records;
    }

    /* Forward slashes, "." and ".." resolved; keeps a drive ("C:"), a leading "/" or "//". */
    function normalisePath(path) {
        var p = String(path).replace(/\\/g, "/"), prefix = "", parts, out = [], i, s;
        if (p.substr(0, 2) === "//") {
            prefix = "//";
            p = p.substr(2);
        } else if (p.charAt(0) === "/") {
            prefix = "/";
            p = p.substr(1);
        }
        parts = p.split("/");
        for (i = 0; i < parts.length; i++) {
            s = parts[i];
            if (s === "" || s === ".") {
                continue;
            }
            if (s === ".." && out.length && out[out.length - 1] !== ".." &&
                    !(out.length === 1 && /:$/.test(out[0]))) {
                out.pop();
                continue;
            }
            out.push(s);
        }
        return prefix + out.join("/");
    }

    function dirName(path) {
        var p = normalisePath(path), at = p.lastIndexOf("/");
        return at < 0 ? "." : p.substr(0, at) || "/";
    }

    function fileExists(path) {
        return studio.system.getFile(path).exists();
    }

    function readText(path) {
        var file = studio.system.getFile(path), text;
        if (!file.exists()) {
            throw new Error("no file " + path);
        }
        if (!file.open(studio.system.openMode.ReadOnly)) {
            throw new Error("cannot open " + path);
        }
        text = file.readText(file.size());
        file.close();
        return text;
    }

    /* The CSV from a folder (the pack's fmod folder or the pack folder) or the CSV's own path. */
    function locateCsv(input) {
        var p = normalisePath(String(input).replace(/^\s+|\s+$/g, "")), candidates, i;
        if (/\.csv$/i.test(p)) {
            return fileExists(p) ? p : null;
        }
        candidates = [p + "/" + EVENTS_CSV, p + "/fmod/" + EVENTS_CSV];
        for (i = 0; i < candidates.length; i++) {
            if (fileExists(candidates[i])) {
                return candidates[i];
            }
        }
        return null;
    }

    // --- project objects ----------------------------------------------------------------------

    function ensureEventFolder(names, report) {
        var folder = studio.project.workspace.masterEventFolder, path = "event:", i, found;
        for (i = 0; i < names.length; i++) {
            path += "/" + names[i];
            found = studio.project.lookup(path);
            if (found && !found.isOfType("EventFolder")) {
                throw new Error(path + " exists and is not an event folder");
            }
            if (!found) {
                found = studio.project.create("EventFolder");
                found.name = names[i];
                found.folder = folder;
                report.folders++;
            }
            folder = found;
        }
        return folder;
    }

    function ensureBank(name, report) {
        var bank = studio.project.lookup("bank:/" + name);
        if (!bank) {
            bank = studio.project.create("Bank");
            bank.name = name;
            bank.folder = studio.project.workspace.masterBankFolder;
            report.banks++;
        }
        return bank;
    }

    function findAsset(assetPath) {
        var asset = null, folder = studio.project.workspace.masterAssetFolder;
        try {
            asset = studio.project.lookup("asset:/" + assetPath);
        } catch (e) {
            asset = null;
        }
        if (!asset && folder && folder.getAsset) {
            asset = folder.getAsset(assetPath);
        }
        return asset && asset.isOfType("AudioFile") ? asset : null;
    }

    /* Copies source over the asset's file (via a temporary copy, so a failed copy loses nothing). */
    function refreshAsset(asset, source, report) {
        var dest = asset.getAbsoluteAssetPath(), temp = dest + ".assetbuild-new";
        if (studio.system.getFile(temp).exists()) {
            studio.system.getFile(temp).remove();
        }
        studio.system.getFile(source).copy(temp);
        if (!studio.system.getFile(temp).exists()) {
            report.warnings.push("could not refresh " + asset.getAssetPath() + " from " + source);
            return;
        }
        studio.system.getFile(dest).remove();
        studio.system.getFile(temp).copy(dest);
        studio.system.getFile(temp).remove();
        if (!studio.system.getFile(dest).exists()) {
            report.warnings.push("lost " + dest + " while refreshing it; import " + source + " again");
            return;
        }
        report.refreshed++;
    }

    /* The AudioFile for a pack file, kept at Assets/<bank>/<path in the pack>. */
    function ensureAsset(source, assetPath, cache, report) {
        var asset = cache[assetPath];
        if (asset) {
            return asset;
        }
        if (!fileExists(source)) {
            throw new Error("missing audio file " + source);
        }
        asset = findAsset(assetPath);
        if (asset) {
            refreshAsset(asset, source, report);
        } else {
            asset = studio.project.importAudioFile(source);
            if (!asset) {
                throw new Error("FMOD Studio could not import " + source);
            }
            if (asset.getAssetPath() !== assetPath && !asset.setAssetPath(assetPath)) {
                report.warnings.push("kept " + asset.getAssetPath() + " at the assets root");
            }
            report.imported++;
        }
        cache[assetPath] = asset;
        return asset;
    }

    function ensureTrack(event) {
        var tracks = event.groupTracks || [], i;
        for (i = 0; i < tracks.length; i++) {
            if (tracks[i].mixerGroup && tracks[i].mixerGroup.name === TRACK_NAME) {
                return tracks[i];
            }
        }
        return event.addGroupTrack(TRACK_NAME);
    }

    /* The track's instrument of the wanted type; instruments of our other types are removed
       (the row's instrument changed since the last import). */
    function ensureInstrument(event, track, type, length) {
        var modules = (track.modules || []).slice(), sound = null, i, other;
        for (i = 0; i < modules.length; i++) {
            if (modules[i].isOfExactType(type)) {
                sound = sound || modules[i];
            } else {
                for (other in INSTRUMENTS) {
                    if (INSTRUMENTS.hasOwnProperty(other) && INSTRUMENTS[other] !== type &&
                            modules[i].isOfExactType(INSTRUMENTS[other])) {
                        studio.project.deleteObject(modules[i]);
                    }
                }
            }
        }
        if (!sound) {
            sound = track.addSound(event.timeline, type, 0, length);
        }
        sound.length = length;
        return sound;
    }

    /* A multi instrument's playlist: one single instrument per take; takes of ours that left
       the pack are removed, anything else in the playlist is kept. */
    function syncPlaylist(multi, assets, ownedPrefix) {
        var children = (multi.sounds || []).slice(), wanted = {}, have = {}, i, path, single;
        for (i = 0; i < assets.length; i++) {
            wanted[assets[i].getAssetPath()] = true;
        }
        for (i = 0; i < children.length; i++) {
            if (!children[i].isOfExactType("SingleSound") || !children[i].audioFile) {
                continue;
            }
            path = children[i].audioFile.getAssetPath();
            if (wanted[path] && !have[path]) {
                have[path] = true;
            } else if (path.indexOf(ownedPrefix) === 0) {
                studio.project.deleteObject(children[i]);
            }
        }
        for (i = 0; i < assets.length; i++) {
            if (!have[assets[i].getAssetPath()]) {
                single = studio.project.create("SingleSound");
                single.audioFile = assets[i];
                single.owner = multi;
            }
        }
    }

    function findLoopRegion(event) {
        var tracks = event.markerTracks || [], i, j, markers;
        for (i = 0; i < tracks.length; i++) {
            markers = tracks[i].markers || [];
            for (j = 0; j < markers.length; j++) {
                if (markers[j].isOfType("LoopRegion") && markers[j].name === LOOP_NAME) {
                    return markers[j];
                }
            }
        }
        return null;
    }

    function setLoopRegion(event, loop, start, end, report) {
        var region = findLoopRegion(event), tracks, markerTrack, mode;
        if (!loop) {
            if (region) {
                studio.project.deleteObject(region);
            }
            return;
        }
        if (region) {
            region.position = start;
            region.length = end - start;
            return;
        }
        tracks = event.markerTracks || [];
        markerTrack = tracks.length ? tracks[0] : (event.addMarkerTrack ? event.addMarkerTrack() : null);
        if (!markerTrack || !markerTrack.addRegion) {
            report.warnings.push(event.getPath() + ": add a loop region by hand (no marker track API)");
            return;
        }
        mode = studio.project.regionLoopMode ? studio.project.regionLoopMode.Looping : undefined;
        markerTrack.addRegion(start, end - start, LOOP_NAME, mode);
    }

    function number(text, fallback) {
        var value = parseFloat(text);
        return isNaN(value) ? fallback : value;
    }

    function importRow(row, packRoot, cache, report) {
        var path = row.event, names = path.replace(/^event:\//, "").split("/"), name = names.pop();
        var type = INSTRUMENTS[row.instrument], bank = row.bank || "assetbuild";
        var event = studio.project.lookup(path), created = false, bus, track, sound, i;
        var files = row.files ? row.files.split(";") : [], assets = [], length;
        var loop = row.loop === "true", start = number(row.loop_start, 0), end;
        if (!type) {
            throw new Error(path + ": unknown instrument " + row.instrument);
        }
        for (i = 0; i < files.length; i++) {
            assets.push(ensureAsset(normalisePath(packRoot + "/" + files[i]), bank + "/" + files[i],
                                    cache, report));
        }
        length = number(row.duration, 0);
        for (i = 0; i < assets.length; i++) {
            if (typeof assets[i].length === "number" && assets[i].length > length) {
                length = assets[i].length;
            }
        }
        if (!(length > 0)) {
            length = 1;
        }
        end = number(row.loop_end, length);
        if (event && !event.isOfType("Event")) {
            throw new Error(path + " exists and is not an event");
        }
        if (!event) {
            event = studio.project.create("Event");
            event.name = name;
            event.folder = ensureEventFolder(names, report);
            event.relationships.banks.add(ensureBank(bank, report));
            bus = row.bus ? studio.project.lookup(row.bus) : null;
            if (bus && event.mixerInput) {
                event.mixerInput.output = bus;
            }
            created = true;
        }
        event.note = row.notes || "";
        track = ensureTrack(event);
        sound = ensureInstrument(event, track, type, length);
        if (type === "SingleSound") {
            sound.audioFile = assets[0];
        } else if (type === "MultiSound") {
            syncPlaylist(sound, assets, bank + "/");
        } else {
            sound.isAsync = true;  // a line plays to its end, however long the instrument
        }
        sound.looping = loop;
        setLoopRegion(event, loop, start, end > start ? end : length, report);
        if (created) {
            report.created.push(path);
        } else {
            report.updated.push(path);
        }
    }

    /* Imports the events of a pack; `location`: its fmod folder, its folder, or the CSV. */
    function importPack(location) {
        var csvPath = locateCsv(location), report, rows, packRoot, cache = {}, i;
        if (!csvPath) {
            throw new Error("no " + EVENTS_CSV + " at " + location);
        }
        report = { csv: csvPath, created: [], updated: [], folders: 0, banks: 0, imported: 0,
                   refreshed: 0, warnings: [] };
        rows = readRecords(readText(csvPath));
        packRoot = normalisePath(dirName(csvPath) + "/..");
        for (i = 0; i < rows.length; i++) {
            importRow(rows[i], packRoot, cache, report);
        }
        lastFolder = dirName(csvPath);
        return report;
    }

    function summary(report) {
        var text = "assetbuild: " + report.created.length + " events created, " +
            report.updated.length + " updated, " + report.imported + " audio files imported, " +
            report.refreshed + " refreshed.";
        if (report.warnings.length) {
            text += "\n\n" + report.warnings.join("\n");
        }
        return text + "\n\nSave the project to keep the changes.";
    }

    function runFromMenu() {
        var location = studio.system.getText(
            "Folder of the assetbuild pack (or its fmod folder, or " + EVENTS_CSV + "):", lastFolder);
        if (location === null || location === undefined || location === "") {
            return;
        }
        try {
            studio.system.message(summary(importPack(location)));
        } catch (e) {
            studio.system.message("assetbuild import failed: " + e.message);
        }
    }

    globalObject.assetbuildImport = importPack;
    if (typeof module !== "undefined" && module) {
        module.exports = { importPack: importPack, parseCsv: parseCsv, normalisePath: normalisePath };
    }
    if (typeof studio !== "undefined" && studio.menu && studio.menu.addMenuItem &&
            !globalObject.assetbuildMenuAdded) {
        globalObject.assetbuildMenuAdded = true;
        studio.menu.addMenuItem({ name: MENU_NAME, execute: runFromMenu });
    }
})();
