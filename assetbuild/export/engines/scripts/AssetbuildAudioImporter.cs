// AssetbuildAudioImporter.cs - written by assetbuild's Unity export; do not edit (it is replaced
// by the next export).
//
// Applies the import settings an assetbuild pack ships to the pack's audio clips, as Unity imports
// them. Copy the whole pack folder (the one holding assetpack.json) anywhere under Assets/; this
// file sits in the pack's unity/Editor/ folder, so Unity compiles it into the editor assembly only.
//
// For each imported audio file the script looks upward from the file for the pack root (the folder
// holding assetpack.json), reads <root>/unity/import_settings.json and applies the entry whose
// "path" is the file's path relative to the root. Files outside a pack, or without an entry, are
// left alone. Only the default sample settings are set: per-platform overrides stay yours.

using System;
using System.Collections.Generic;
using System.IO;
using UnityEditor;
using UnityEngine;
#if UNITY_2020_2_OR_NEWER
using UnityEditor.AssetImporters;
#endif

namespace Assetbuild.EditorTools
{
    public class AssetbuildAudioImporter : AssetPostprocessor
    {
        /// <summary>The file that marks a pack root.</summary>
        public const string PackFile = "assetpack.json";

        /// <summary>The settings file, relative to the pack root.</summary>
        public const string SettingsFile = "unity/import_settings.json";

        /// <summary>Bump to make Unity reimport every clip when this script's behaviour changes.</summary>
        const uint Version = 1;

        /// <summary>One file's settings, as in import_settings.json (field names must match).</summary>
        [Serializable]
        public class Entry
        {
            public string path;
            public string id;
            public string name;
            public string kind;
            public string locale;
            public string group;
            public int take;
            public float duration;
            public int channels;
            public int sampleRate;
            public bool loop;
            public int loopStart;
            public int loopEnd;
            public string loadType;
            public string compressionFormat;
            public float quality;
            public string sampleRateSetting;
            public bool forceToMono;
            public bool preloadAudioData;
            public bool loadInBackground;
        }

        /// <summary>The whole of import_settings.json.</summary>
        [Serializable]
        public class Settings
        {
            public int version;
            public string pack;
            public string packVersion;
            public float streamOver;
            public float shortSfx;
            public Entry[] entries;
        }

        class CachedSettings
        {
            public DateTime stamp;
            public long length;
            public Dictionary<string, Entry> byPath;
        }

        // Parsed settings files by path, re-read when the file changes.
        static readonly Dictionary<string, CachedSettings> cache =
            new Dictionary<string, CachedSettings>(StringComparer.Ordinal);

        // Settings files already reported missing, so each is reported once.
        static readonly HashSet<string> reported = new HashSet<string>(StringComparer.Ordinal);

        public override uint GetVersion()
        {
            return Version;
        }

        void OnPreprocessAudio()
        {
            AudioImporter importer = assetImporter as AudioImporter;
            if (importer == null)
                return;
            string root = FindPackRoot(assetPath);
            if (root == null)
                return;
            string settingsPath = root + "/" + SettingsFile;
#if UNITY_2020_2_OR_NEWER
            // Reimport the clip when the pack's settings change.
            if (context != null)
                context.DependsOnSourceAsset(settingsPath);
#endif
            Entry entry = Find(settingsPath, assetPath.Substring(root.Length + 1));
            if (entry != null)
                Apply(importer, entry);
        }

        /// <summary>The nearest folder above assetPath that holds a pack, or null.</summary>
        public static string FindPackRoot(string assetPath)
        {
            string dir = assetPath.Replace('\\', '/');
            int slash = dir.LastIndexOf('/');
            while (slash > 0)
            {
                dir = dir.Substring(0, slash);
                if (File.Exists(dir + "/" + PackFile) || File.Exists(dir + "/" + SettingsFile))
                    return dir;
                slash = dir.LastIndexOf('/');
            }
            return null;
        }

        /// <summary>The entry for a path relative to the pack root, or null.</summary>
        public static Entry Find(string settingsPath, string relativePath)
        {
            Dictionary<string, Entry> entries = Load(settingsPath);
            Entry entry;
            if (entries != null && entries.TryGetValue(relativePath, out entry))
                return entry;
            return null;
        }

        /// <summary>A settings file's entries by path; null when it is missing or unreadable.</summary>
        public static Dictionary<string, Entry> Load(string settingsPath)
        {
            FileInfo info = new FileInfo(settingsPath);
            if (!info.Exists)
            {
                if (reported.Add(settingsPath))
                    Debug.LogWarning("assetbuild: " + settingsPath + " not found; copy the pack's unity/ folder too");
                return null;
            }
            CachedSettings cached;
            if (cache.TryGetValue(settingsPath, out cached)
                && cached.stamp == info.LastWriteTimeUtc && cached.length == info.Length)
                return cached.byPath;

            Settings settings;
            try
            {
                settings = JsonUtility.FromJson<Settings>(File.ReadAllText(settingsPath));
            }
            catch (Exception e)
            {
                Debug.LogWarning("assetbuild: cannot read " + settingsPath + ": " + e.Message);
                return null;
            }
            Dictionary<string, Entry> byPath = new Dictionary<string, Entry>(StringComparer.OrdinalIgnoreCase);
            if (settings != null && settings.entries != null)
            {
                foreach (Entry entry in settings.entries)
                {
                    if (entry != null && !string.IsNullOrEmpty(entry.path))
                        byPath[entry.path] = entry;
                }
            }
            cached = new CachedSettings();
            cached.stamp = info.LastWriteTimeUtc;
            cached.length = info.Length;
            cached.byPath = byPath;
            cache[settingsPath] = cached;
            return byPath;
        }

        /// <summary>Copies an entry's settings onto the importer.</summary>
        public static void Apply(AudioImporter importer, Entry entry)
        {
            AudioImporterSampleSettings sample = importer.defaultSampleSettings;
            sample.loadType = Parse(entry.loadType, sample.loadType, entry.path);
            sample.compressionFormat = Parse(entry.compressionFormat, sample.compressionFormat, entry.path);
            sample.sampleRateSetting = Parse(entry.sampleRateSetting, sample.sampleRateSetting, entry.path);
            sample.quality = Math.Max(0f, Math.Min(1f, entry.quality));
#if UNITY_2022_2_OR_NEWER
            sample.preloadAudioData = entry.preloadAudioData;
#else
            importer.preloadAudioData = entry.preloadAudioData;
#endif
            importer.defaultSampleSettings = sample;
            importer.forceToMono = entry.forceToMono;
            importer.loadInBackground = entry.loadInBackground;
        }

        static T Parse<T>(string value, T fallback, string path) where T : struct
        {
            if (string.IsNullOrEmpty(value))
                return fallback;
            T parsed;
            if (Enum.TryParse<T>(value, false, out parsed) && Enum.IsDefined(typeof(T), parsed))
                return parsed;
            Debug.LogWarning("assetbuild: " + path + ": unknown " + typeof(T).Name + " '" + value + "'");
            return fallback;
        }

        /// <summary>Reimports every clip listed by the packs under Assets/ (after editing settings).</summary>
        [MenuItem("Tools/Assetbuild/Reimport Pack Audio")]
        static void ReimportPackAudio()
        {
            cache.Clear();
            reported.Clear();
            int count = 0;
            AssetDatabase.StartAssetEditing();
            try
            {
                foreach (string found in Directory.GetFiles("Assets", "import_settings.json", SearchOption.AllDirectories))
                {
                    string settingsPath = found.Replace('\\', '/');
                    if (!settingsPath.EndsWith("/" + SettingsFile, StringComparison.Ordinal))
                        continue;
                    string root = settingsPath.Substring(0, settingsPath.Length - SettingsFile.Length - 1);
                    Dictionary<string, Entry> entries = Load(settingsPath);
                    if (entries == null)
                        continue;
                    foreach (string relative in entries.Keys)
                    {
                        string clip = root + "/" + relative;
                        if (!File.Exists(clip))
                            continue;
                        AssetDatabase.ImportAsset(clip, ImportAssetOptions.ForceUpdate);
                        count++;
                    }
                }
            }
            finally
            {
                AssetDatabase.StopAssetEditing();
            }
            Debug.Log("assetbuild: reimported " + count + " clips");
        }
    }
}
