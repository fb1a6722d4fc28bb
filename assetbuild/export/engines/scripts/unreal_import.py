"""Import an assetbuild pack into Unreal Engine 5. Runs inside the editor:

    py "<output>/unreal/import_assetpack.py" [--row-struct /Script/YourGame.AssetbuildAudioRow]

or headless:

    UnrealEditor-Cmd <Game>.uproject -run=pythonscript -script="<output>/unreal/import_assetpack.py"

The row struct can also come from the ASSETBUILD_ROW_STRUCT environment variable (this file is
rewritten by every export, so an edit to ROW_STRUCT below does not last).

Every row of AssetbuildAudio.json becomes a SoundWave at its `Asset` path, with looping and
subtitle cues set; with a row struct, AssetbuildAudio.csv also becomes the DataTable
DT_AssetbuildAudio beside the sounds. Running it again re-imports in place.
"""

import json
import os
import posixpath
import sys

import unreal

# The USTRUCT the DataTable uses; empty = do not import the table.
ROW_STRUCT = ""
TABLE_NAME = "DT_AssetbuildAudio"

HERE = os.path.dirname(os.path.abspath(__file__))
PACK = os.path.dirname(HERE)  # this script lives in <output>/unreal/


def option(name, default):
    args = sys.argv[1:]
    if name in args and args.index(name) + 1 < len(args):
        return args[args.index(name) + 1]
    return default


def sound_task(row):
    package = row["Asset"].split(".")[0]
    task = unreal.AssetImportTask()
    task.set_editor_property("filename", os.path.normpath(os.path.join(PACK, *row["File"].split("/"))))
    task.set_editor_property("destination_path", posixpath.dirname(package))
    # A localised line keeps the source line's name so Unreal swaps it in under /Game/L10N.
    task.set_editor_property("destination_name", posixpath.basename(package))
    task.set_editor_property("automated", True)
    task.set_editor_property("replace_existing", True)
    task.set_editor_property("save", True)
    return task


def table_task(struct_path, destination):
    struct = unreal.load_object(None, struct_path)
    if struct is None:
        unreal.log_error("assetbuild: row struct %s not found; DataTable not imported" % struct_path)
        return None
    factory = unreal.CSVImportFactory()
    # automated_import_settings is a struct: edit a copy and set it back.
    settings = factory.get_editor_property("automated_import_settings")
    settings.set_editor_property("import_row_struct", struct)
    settings.set_editor_property("import_type", unreal.CSVImportType.ECSV_DATA_TABLE)
    factory.set_editor_property("automated_import_settings", settings)
    task = unreal.AssetImportTask()
    task.set_editor_property("filename", os.path.join(HERE, "AssetbuildAudio.csv"))
    task.set_editor_property("destination_path", destination)
    task.set_editor_property("destination_name", TABLE_NAME)
    task.set_editor_property("factory", factory)
    task.set_editor_property("automated", True)
    task.set_editor_property("replace_existing", True)
    task.set_editor_property("save", True)
    return task


def main():
    with open(os.path.join(HERE, "AssetbuildAudio.json"), encoding="utf-8") as f:
        rows = json.load(f)
    missing = [row["Name"] for row in rows if not os.path.isfile(os.path.join(PACK, *row["File"].split("/")))]
    for name in missing:
        unreal.log_error("assetbuild: %s: audio file missing; was the pack moved?" % name)
    rows = [row for row in rows if row["Name"] not in missing]

    tasks = [sound_task(row) for row in rows]
    unreal.AssetToolsHelpers.get_asset_tools().import_asset_tasks(tasks)

    imported = looping = subtitled = 0
    for row, task in zip(rows, tasks):
        path = row["Asset"]
        wave = unreal.EditorAssetLibrary.load_asset(path) if task.get_editor_property("imported_object_paths") else None
        if wave is None:
            unreal.log_error("assetbuild: %s: import failed (%s)" % (row["Name"], row["File"]))
            continue
        # Set both ways: a re-import keeps the old value when a loop was taken out of the manifest.
        wave.set_editor_property("looping", bool(row["Loop"]))
        if row["Kind"] == "dialogue":
            cues = [unreal.SubtitleCue(text=unreal.Text(c["Text"]), time=float(c["Time"])) for c in row["Subtitles"]]
            wave.set_editor_property("subtitles", cues)
            subtitled += bool(cues)
        unreal.EditorAssetLibrary.save_asset(path, only_if_is_dirty=False)
        imported += 1
        looping += bool(row["Loop"])

    table = "skipped (no row struct set)"
    struct_path = option("--row-struct", os.environ.get("ASSETBUILD_ROW_STRUCT") or ROW_STRUCT)
    source_rows = [row for row in rows if not row["Asset"].startswith("/Game/L10N/")]
    if struct_path and source_rows:
        # The table goes in the project folder, beside the Dialogue/Ambience/... folders.
        destination = posixpath.dirname(posixpath.dirname(source_rows[0]["Asset"]))
        task = table_task(struct_path, destination)
        if task is not None:
            unreal.AssetToolsHelpers.get_asset_tools().import_asset_tasks([task])
            ok = bool(task.get_editor_property("imported_object_paths"))
            table = "%s/%s" % (destination, TABLE_NAME) if ok else "FAILED (see the log)"

    unreal.log("assetbuild: imported %d of %d sounds (%d looping, %d with subtitles); DataTable: %s"
               % (imported, len(rows) + len(missing), looping, subtitled, table))


main()
